// Crashes: a SIGKILLed worker is logged and replaced within 1 s (other tunnels unharmed); when the
// master is SIGKILLed its workers drain (PR_SET_PDEATHSIG -> SIGTERM) and none outlives
// shutdown_timeout.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import { upgradeRequest } from './lib/raw.mjs';
import {
  echoRound, childPids, waitWorkers, waitNewWorkers, waitGone, isRunningEch3, probeConnect, waitFor, stopPids, sleep,
} from './lib/lifecycle.mjs';

describe('lifecycle: crashes (SIGKILL of a worker, of the master)', () => {
  const servers = [];
  const workerPids = new Set(); // workers of a killed master are not the test runner's children
  let echo;
  after(async () => {
    for (const s of servers) await s.stop(1000);
    await stopPids([...workerPids], { signal: 'SIGKILL' });
    await echo?.close();
  });

  it('SIGKILL of a worker: logged with its signal, replaced within 1 s, new tunnels work, the other worker\'s tunnels unharmed', { timeout: 20000 }, async () => {
    echo ??= await startEcho();
    const srv = await startServer({ workers: 2, set: { log_level: 'info' } });
    servers.push(srv);
    const before = await waitWorkers(srv.pid, 2);
    // open tunnels until both workers hold some (the kernel spreads connections over the two sockets)
    const tunnels = [];
    for (let i = 0; i < 8; i++) {
      const t = await openTunnel(srv.port, echo.target);
      assert.equal(await echoRound(t), 0);
      tunnels.push(t);
    }
    const victim = before[0];
    const t0 = Date.now();
    process.kill(victim, 'SIGKILL');
    const line = await srv.waitForLine(new RegExp(`worker \\d+ \\(pid ${victim}\\) killed by signal 9\\b.*respawning in (\\d+) ms`), 2000);
    const backoff = Number(/respawning in (\d+) ms/.exec(line)[1]);
    const after1 = await waitFor(() => {
      const c = childPids(srv.pid);
      return c.length === 2 && !c.includes(victim) ? c : null;
    }, { timeout: 1000, every: 10, what: `a replacement for worker ${victim} (children now: ${childPids(srv.pid).join(',')})` });
    const replacedMs = Date.now() - t0;
    const replacement = after1.find((p) => !before.includes(p));
    console.log(`crash: worker ${victim} SIGKILLed; logged "${line.replace(/^.*?ech3\[\d+\]: /, '')}"; replacement ${replacement} after ${replacedMs} ms`);
    assert.equal(backoff, 100, 'first respawn backoff');
    assert.ok(replacement && isRunningEch3(replacement), 'the replacement worker is not running');
    assert.ok(after1.includes(before[1]), 'the surviving worker was replaced too');

    // tunnels on the killed worker are gone; the ones on the survivor keep relaying
    await sleep(200);
    const survivors = tunnels.filter((t) => t.open);
    const cut = tunnels.length - survivors.length;
    for (const t of survivors) assert.equal(await echoRound(t), 0, 'a tunnel on the surviving worker corrupted');
    console.log(`crash: ${cut} tunnels died with the worker, ${survivors.length} on the other worker still relay`);

    // new tunnels work (several, so both sockets are used)
    for (let i = 0; i < 10; i++) {
      const t = await openTunnel(srv.port, echo.target);
      assert.equal(await echoRound(t), 0, `new tunnel ${i} after the crash corrupted`);
      await t.sendText('CLOSE');
      await t.waitClose(3000);
    }
    for (const t of tunnels) t.terminate();
    assert.equal(srv.exited, null, 'the master exited');
  });

  it('SIGKILL of the master: workers keep relaying their tunnels, refuse new ones, and none outlives shutdown_timeout=2', { timeout: 20000 }, async () => {
    echo ??= await startEcho();
    const srv = await startServer({ workers: 2, set: { log_level: 'info', shutdown_timeout: 2 } });
    servers.push(srv);
    const workers = await waitWorkers(srv.pid, 2);
    for (const p of workers) workerPids.add(p);
    const tunnels = [];
    for (let i = 0; i < 6; i++) {
      const t = await openTunnel(srv.port, echo.target);
      assert.equal(await echoRound(t), 0);
      tunnels.push(t);
    }
    const t0 = Date.now();
    process.kill(srv.pid, 'SIGKILL');
    await srv.exitPromise;

    // the workers drain: tunnels still relay for a while
    await sleep(300);
    for (const [i, t] of tunnels.entries()) {
      assert.ok(t.open, `tunnel ${i} closed ${Date.now() - t0} ms after the master died (expected a drain of shutdown_timeout=2s)`);
      assert.equal(await echoRound(t), 0, `tunnel ${i} corrupted after the master died`);
    }
    const probe = await probeConnect(srv.port, { timeout: 500, request: upgradeRequest().request });
    assert.equal(probe.outcome, 'refused', `a new connection was served after the master died: ${JSON.stringify(probe)}`);

    const gone = await waitGone(workers, 2000 + 1500);
    const alive = workers.filter((p) => isRunningEch3(p));
    console.log(`crash: master SIGKILLed; workers ${workers.join(',')} gone after ${gone === null ? `>${Date.now() - t0}` : Date.now() - t0} ms (shutdown_timeout=2s)`);
    assert.deepEqual(alive, [], `workers still running ${Date.now() - t0} ms after the master was killed (shutdown_timeout=2s)`);
    assert.ok(Date.now() - t0 >= 1500, `workers gone after ${Date.now() - t0} ms: they did not drain`);
    for (const t of tunnels) await t.waitClose(1000);
  });

  it('SIGKILL of the master while an old generation drains (drain_timeout=30): no worker outlives shutdown_timeout=2', { timeout: 20000 }, async () => {
    echo ??= await startEcho();
    const srv = await startServer({ workers: 1, set: { log_level: 'info', shutdown_timeout: 2, drain_timeout: 30 } });
    servers.push(srv);
    const gen1 = await waitWorkers(srv.pid, 1);
    for (const p of gen1) workerPids.add(p);
    const t = await openTunnel(srv.port, echo.target);
    assert.equal(await echoRound(t), 0);
    process.kill(srv.pid, 'SIGHUP');
    await srv.waitForLine(new RegExp(`ech3\\[${gen1[0]}\\]: worker \\d+ draining`), 5000);
    const all = [...gen1, ...await waitNewWorkers(srv.pid, gen1, 1)];
    for (const p of all) workerPids.add(p);

    const t0 = Date.now();
    process.kill(srv.pid, 'SIGKILL');
    await srv.exitPromise;
    await sleep(300);
    assert.equal(await echoRound(t), 0, 'draining tunnel corrupted after the master died');
    const gone = await waitGone(all, 2000 + 1500);
    const alive = all.filter((p) => isRunningEch3(p));
    console.log(`crash: master SIGKILLed during a drain; workers ${all.join(',')}: ${alive.length ? `${alive.join(',')} still running` : 'all gone'} after ${Date.now() - t0} ms (shutdown_timeout=2s, drain_timeout=30s)`);
    assert.notEqual(gone, null, `orphaned workers ${alive.join(',')} still running ${Date.now() - t0} ms after the master was killed (shutdown_timeout=2s; the old generation keeps its drain_timeout=30s)`);
    await t.waitClose(1000);
  });
});
