// Stopping the master: SIGTERM (and SIGQUIT) refuses new connections at once, lets open tunnels finish (exit 0
// as soon as they do) and cuts what is left at shutdown_timeout; a second SIGTERM and SIGINT stop
// at once.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import { upgradeRequest } from './lib/raw.mjs';
import {
  echoRound, waitWorkers, waitNewWorkers, waitGone, probeConnect, stderrClosed, sleep,
} from './lib/lifecycle.mjs';

const GRACE_MS = 3000; // the master's grace past the drain deadline before SIGKILL

/** Resolves {code, signal, ms} when the master exits, or null after timeout. */
async function exitWithin(srv, t0, timeout) {
  let timer;
  const r = await Promise.race([srv.exitPromise, new Promise((res) => { timer = setTimeout(() => res(null), timeout); })]);
  clearTimeout(timer);
  return r && { ...r, ms: Date.now() - t0 };
}

/** After a stop signal: poll connects until one is refused; returns {ms, attempts, accepted}. */
async function waitRefused(port, t0, within = 1000) {
  const attempts = [];
  for (;;) {
    const r = await probeConnect(port, { timeout: 500, request: upgradeRequest().request });
    attempts.push(r);
    if (r.outcome === 'refused') return { ms: Date.now() - t0, attempts };
    if (Date.now() - t0 > within) return { ms: null, attempts };
    await sleep(25);
  }
}

describe('lifecycle: stop signals (SIGTERM, SIGQUIT, SIGINT)', () => {
  const servers = [];
  let echo;
  after(async () => {
    for (const s of servers) await s.stop(1000);
    await echo?.close();
  });

  async function start(set) {
    echo ??= await startEcho();
    const srv = await startServer({ workers: 2, set: { log_level: 'info', ...set } });
    servers.push(srv);
    const workers = await waitWorkers(srv.pid, 2);
    return { srv, workers };
  }

  it('SIGTERM: new connections refused at once, open tunnels keep relaying, exit 0 as soon as they finish (shutdown_timeout=5)', { timeout: 20000 }, async () => {
    const { srv, workers } = await start({ shutdown_timeout: 5 });
    const tunnels = [];
    for (let i = 0; i < 4; i++) tunnels.push(await openTunnel(srv.port, echo.target));
    for (const t of tunnels) assert.equal(await echoRound(t), 0);

    const t0 = Date.now();
    process.kill(srv.pid, 'SIGTERM');
    const refused = await waitRefused(srv.port, t0, 1000);
    assert.notEqual(refused.ms, null, `new connections still accepted 1 s after SIGTERM: ${JSON.stringify(refused.attempts)}`);
    const again = await probeConnect(srv.port, { timeout: 500, request: upgradeRequest().request });
    assert.equal(again.outcome, 'refused', `a connection after the first refusal was not refused: ${JSON.stringify(again)}`);

    // open tunnels keep relaying during the drain
    while (Date.now() - t0 < 1000) {
      for (const [i, t] of tunnels.entries()) assert.equal(await echoRound(t, 2048), 0, `tunnel ${i} corrupted while stopping`);
      await sleep(100);
    }
    for (const t of tunnels) assert.ok(t.open, `a tunnel was closed ${Date.now() - t0} ms after SIGTERM, before it finished`);
    assert.equal(srv.exited, null, 'the master exited while tunnels were open');

    // the tunnels end after ~1 s: the master must exit right after, well before shutdown_timeout
    const tEnd = Date.now();
    for (const t of tunnels) await t.sendText('CLOSE');
    for (const t of tunnels) assert.equal((await t.waitClose(3000)).code, 1000);
    const ex = await exitWithin(srv, t0, 8000);
    console.log(`sigterm: refused ${refused.ms} ms after SIGTERM (${refused.attempts.length} probes); tunnels ended at ${tEnd - t0} ms; master exited at ${ex?.ms} ms code=${ex?.code} signal=${ex?.signal}`);
    assert.notEqual(ex, null, `the master did not exit after its tunnels finished\n${srv.dumpLog(20)}`);
    assert.equal(ex.signal, null, `the master was killed by ${ex.signal}`);
    assert.equal(ex.code, 0, 'exit code of a graceful stop');
    assert.ok(Date.now() - tEnd < 2000, `the master exited ${ex.ms - (tEnd - t0)} ms after the last tunnel ended (expected at once)`);
    assert.ok(ex.ms < 5000, `exit ${ex.ms} ms after SIGTERM: it waited for shutdown_timeout although all tunnels had ended`);
    assert.notEqual(await waitGone(workers, 1000), null, 'a worker outlived the master');
  });

  it('SIGTERM with a tunnel that does not finish: cut at shutdown_timeout=2, master exits 0 within the 3 s grace', { timeout: 20000 }, async () => {
    const { srv, workers } = await start({ shutdown_timeout: 2 });
    const t = await openTunnel(srv.port, echo.target);
    assert.equal(await echoRound(t), 0);

    const t0 = Date.now();
    process.kill(srv.pid, 'SIGTERM');
    let rounds = 0;
    while (Date.now() - t0 < 1500) {
      assert.equal(await echoRound(t, 2048), 0, 'tunnel corrupted while stopping');
      rounds++;
      await sleep(200);
    }
    assert.ok(t.open, `tunnel closed ${Date.now() - t0} ms after SIGTERM, before shutdown_timeout=2s`);

    await t.waitClose(2000 + GRACE_MS + 1000);
    const closedAt = Date.now() - t0;
    const ex = await exitWithin(srv, t0, 2000 + GRACE_MS + 2000);
    console.log(`sigterm: unfinished tunnel closed ${closedAt} ms after SIGTERM (${rounds} rounds), master exited at ${ex?.ms} ms code=${ex?.code} signal=${ex?.signal}`);
    assert.ok(closedAt >= 1800, `tunnel cut ${closedAt} ms after SIGTERM, before shutdown_timeout=2s`);
    assert.ok(closedAt <= 2000 + 1500, `tunnel cut ${closedAt} ms after SIGTERM, shutdown_timeout=2s`);
    assert.notEqual(ex, null, `the master did not exit within shutdown_timeout + grace\n${srv.dumpLog(20)}`);
    assert.equal(ex.signal, null, `the master was killed by ${ex.signal}`);
    assert.equal(ex.code, 0, 'exit code of a graceful stop');
    assert.ok(ex.ms <= 2000 + GRACE_MS + 500, `master exited ${ex.ms} ms after SIGTERM (shutdown_timeout=2s + ${GRACE_MS} ms grace)`);
    assert.notEqual(await waitGone(workers, 1000), null, 'a worker outlived the master');
  });

  it('SIGTERM while an old generation drains (drain_timeout=30): its tunnel too is cut at shutdown_timeout=2, no worker needs SIGKILL', { timeout: 20000 }, async () => {
    const { srv, workers: gen1 } = await start({ shutdown_timeout: 2, drain_timeout: 30 });
    const tunnels = [];
    for (let i = 0; i < 4; i++) tunnels.push(await openTunnel(srv.port, echo.target));
    for (const t of tunnels) assert.equal(await echoRound(t), 0);
    process.kill(srv.pid, 'SIGHUP');
    for (const p of gen1) await srv.waitForLine(new RegExp(`ech3\\[${p}\\]: worker \\d+ draining`), 5000);
    const gen2 = await waitNewWorkers(srv.pid, gen1, 2);

    const t0 = Date.now();
    process.kill(srv.pid, 'SIGTERM');
    await sleep(500);
    for (const t of tunnels) assert.equal(await echoRound(t), 0, 'a draining tunnel corrupted after SIGTERM');
    const closedAt = await Promise.all(tunnels.map((t) => t.waitClose(2000 + GRACE_MS + 2000).then(() => Date.now() - t0)));
    const ex = await exitWithin(srv, t0, 2000 + GRACE_MS + 2000);
    await stderrClosed(srv);
    const killed = srv.lines.filter((l) => /still running after the deadline|killed by signal 9/.test(l));
    console.log(`sigterm: old-generation tunnels closed at ${closedAt.join(',')} ms after SIGTERM (shutdown_timeout=2s, drain_timeout=30s); master exited at ${ex?.ms} ms code=${ex?.code}; SIGKILL lines: ${killed.length}`);
    assert.notEqual(ex, null, `the master did not exit\n${srv.dumpLog(20)}`);
    assert.equal(ex.code, 0, 'exit code of a graceful stop');
    assert.deepEqual(killed.map((l) => l.replace(/^.*?ech3\[\d+\]: /, '')), [],
      'the old generation ignored the stop (it kept drain_timeout=30s) and had to be SIGKILLed at shutdown_timeout + grace');
    assert.ok(Math.max(...closedAt) <= 2000 + 1500, `old-generation tunnels cut ${Math.max(...closedAt)} ms after SIGTERM, shutdown_timeout=2s`);
    assert.notEqual(await waitGone([...gen1, ...gen2], 1000), null, 'a worker outlived the master');
  });

  it('SIGQUIT is a graceful stop too: refuses new connections, the open tunnel keeps relaying, exit 0 once it ends', { timeout: 20000 }, async () => {
    const { srv, workers } = await start({ shutdown_timeout: 10 });
    const t = await openTunnel(srv.port, echo.target);
    assert.equal(await echoRound(t), 0);
    const t0 = Date.now();
    process.kill(srv.pid, 'SIGQUIT');
    const refused = await waitRefused(srv.port, t0, 1000);
    assert.notEqual(refused.ms, null, `new connections still accepted 1 s after SIGQUIT: ${JSON.stringify(refused.attempts)}`);
    await sleep(500);
    assert.ok(t.open, `tunnel closed ${Date.now() - t0} ms after SIGQUIT`);
    assert.equal(await echoRound(t), 0, 'tunnel corrupted after SIGQUIT');
    await t.sendText('CLOSE');
    await t.waitClose(3000);
    const tEnd = Date.now();
    const ex = await exitWithin(srv, t0, 5000);
    console.log(`sigterm: SIGQUIT: refused at ${refused.ms} ms, tunnel ended at ${tEnd - t0} ms, master exited at ${ex?.ms} ms code=${ex?.code}`);
    assert.notEqual(ex, null, `the master did not exit after its tunnel ended\n${srv.dumpLog(20)}`);
    assert.equal(ex.code, 0);
    assert.ok(Date.now() - tEnd < 2000, 'the master did not exit right after the last tunnel ended');
    assert.notEqual(await waitGone(workers, 1000), null, 'a worker outlived the master');
  });

  for (const [name, signals] of [['a second SIGTERM', ['SIGTERM', 'SIGTERM']], ['SIGINT', ['SIGINT']]]) {
    it(`${name} stops at once although a tunnel is open (shutdown_timeout=30)`, { timeout: 20000 }, async () => {
      const { srv, workers } = await start({ shutdown_timeout: 30 });
      const t = await openTunnel(srv.port, echo.target);
      assert.equal(await echoRound(t), 0);
      if (signals.length > 1) {
        process.kill(srv.pid, signals[0]);
        await srv.waitForLine(/graceful stop/, 3000);
        await sleep(200);
        assert.ok(t.open, 'tunnel closed by the first SIGTERM');
        assert.equal(await echoRound(t), 0);
      }
      const t0 = Date.now();
      process.kill(srv.pid, signals[signals.length - 1]);
      const ex = await exitWithin(srv, t0, 5000);
      console.log(`sigterm: ${name}: master exited at ${ex?.ms} ms code=${ex?.code} signal=${ex?.signal}; tunnel ${t.open ? 'open' : `closed ${JSON.stringify(t.closeInfo)}`}`);
      assert.notEqual(ex, null, `the master did not exit within 5 s of ${name}\n${srv.dumpLog(20)}`);
      assert.equal(ex.signal, null, `the master was killed by ${ex.signal}`);
      assert.ok(ex.ms < 1500, `${name}: exit took ${ex.ms} ms`);
      await t.waitClose(1000);
      assert.notEqual(await waitGone(workers, 1000), null, 'a worker outlived the master');
    });
  }
});
