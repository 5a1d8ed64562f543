// Draining after a reload: a tunnel opened before SIGHUP keeps relaying byte-exact on its old
// worker and is cut only when drain_timeout has passed; max_draining_generations caps how many old
// generations may drain at once.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import {
  echoRound, childPids, waitWorkers, waitNewWorkers, waitGone, countLines, waitNewLine, sleep,
} from './lib/lifecycle.mjs';

const DRAIN_S = 3;
const SLACK_MS = 1500;

/** SIGHUP and wait for this reload's "reloaded" line and for the old workers' "draining" lines. */
async function reloadAndWaitDraining(srv, oldWorkers) {
  const nReloaded = countLines(srv, /reloaded: generation/);
  const t0 = Date.now();
  process.kill(srv.pid, 'SIGHUP');
  await waitNewLine(srv, /reloaded: generation/, nReloaded, 5000);
  for (const p of oldWorkers) await srv.waitForLine(new RegExp(`ech3\\[${p}\\]: worker \\d+ draining`), 5000);
  return t0;
}

describe('lifecycle: drain after reload', () => {
  const servers = [];
  let echo;
  after(async () => {
    for (const s of servers) await s.stop();
    await echo?.close();
  });

  it(`a tunnel opened before SIGHUP relays byte-exact across it and is cut after drain_timeout=${DRAIN_S}s, not before`, { timeout: 20000 }, async () => {
    echo ??= await startEcho();
    const srv = await startServer({ workers: 1, set: { log_level: 'info', drain_timeout: DRAIN_S } });
    servers.push(srv);
    const [oldWorker] = await waitWorkers(srv.pid, 1);
    const nConns = echo.conns.length;
    const t = await openTunnel(srv.port, echo.target);
    const conn = await echo.waitConnection(nConns);
    assert.equal(await echoRound(t, 4096), 0, 'corrupted before the reload');

    const t0 = await reloadAndWaitDraining(srv, [oldWorker]);
    assert.ok(childPids(srv.pid).includes(oldWorker), 'the old worker must still be running while it drains');

    // relay several times across the first ~2 s of the drain
    let rounds = 0;
    while (Date.now() - t0 < (DRAIN_S - 1) * 1000) {
      const bad = await echoRound(t, 8192);
      assert.equal(bad, 0, `draining tunnel corrupted ${bad} bytes in round ${rounds} (${Date.now() - t0} ms after SIGHUP)`);
      rounds++;
      await sleep(250);
    }
    assert.ok(rounds >= 4, `only ${rounds} echo rounds in the drain window`);
    assert.ok(t.open, `tunnel closed ${Date.now() - t0} ms after SIGHUP, before drain_timeout=${DRAIN_S}s: ${JSON.stringify(t.closeInfo)}`);
    assert.equal(conn.closedSeen, false, 'the target connection was closed during the drain');

    // a new tunnel meanwhile is served by the new generation
    const t2 = await openTunnel(srv.port, echo.target);
    assert.equal(await echoRound(t2, 1024), 0, 'new tunnel during the drain corrupted');
    await t2.sendText('CLOSE');
    await t2.waitClose(5000);

    // cut at the deadline
    await t.waitClose(DRAIN_S * 1000 + SLACK_MS);
    const closedAt = Date.now() - t0;
    console.log(`drain: tunnel closed ${closedAt} ms after SIGHUP (drain_timeout=${DRAIN_S}s), ${rounds} echo rounds while draining`);
    assert.ok(closedAt >= DRAIN_S * 1000 - 300, `cut ${closedAt} ms after SIGHUP, before drain_timeout=${DRAIN_S}s`);
    assert.ok(closedAt <= DRAIN_S * 1000 + SLACK_MS, `cut ${closedAt} ms after SIGHUP, drain_timeout=${DRAIN_S}s`);
    await conn.waitClosed(3000);
    const gone = await waitGone([oldWorker], 3000);
    assert.notEqual(gone, null, `old worker ${oldWorker} still running ${Date.now() - t0} ms after SIGHUP`);
    await srv.waitForLine(new RegExp(`worker 0 \\(pid ${oldWorker}, generation 1\\) exited with status 0`), 2000); // a clean exit, not a crash

    // the server still serves
    const t3 = await openTunnel(srv.port, echo.target);
    assert.equal(await echoRound(t3, 1024), 0);
    t3.close();
  });

  it('max_draining_generations=1: a second reload closes the oldest draining generation at once, the newer one keeps draining', { timeout: 20000 }, async () => {
    echo ??= await startEcho();
    const srv = await startServer({ workers: 1, set: { log_level: 'info', drain_timeout: 30, max_draining_generations: 1 } });
    servers.push(srv);
    const [gen1] = await waitWorkers(srv.pid, 1);
    const a = await openTunnel(srv.port, echo.target);
    assert.equal(await echoRound(a), 0);

    await reloadAndWaitDraining(srv, [gen1]);
    const [gen2] = await waitNewWorkers(srv.pid, [gen1], 1);
    const b = await openTunnel(srv.port, echo.target);
    assert.equal(await echoRound(b), 0);
    // one draining generation is allowed: a still relays
    await sleep(300);
    assert.ok(a.open, `generation-1 tunnel closed after the first reload although max_draining_generations=1: ${JSON.stringify(a.closeInfo)}`);
    assert.equal(await echoRound(a), 0);

    const t1 = Date.now();
    await reloadAndWaitDraining(srv, [gen2]);
    await a.waitClose(3000);
    console.log(`max_draining_generations: generation-1 tunnel closed ${Date.now() - t1} ms after the second SIGHUP`);
    assert.notEqual(await waitGone([gen1], 3000), null, `generation-1 worker ${gen1} still running`);
    await sleep(300);
    assert.ok(b.open, `generation-2 tunnel closed by the second reload: ${JSON.stringify(b.closeInfo)}`);
    assert.equal(await echoRound(b), 0, 'generation-2 tunnel corrupted while draining');
    assert.ok(childPids(srv.pid).includes(gen2), 'generation-2 worker must still be draining');
    a.terminate();
    b.terminate();
  });
});

