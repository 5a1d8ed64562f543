// SIGHUP every 2 s while 16 clients loop short echo tunnels for 15 s: a reload must not fail or
// corrupt a single tunnel (new generation on the same sockets, old one drains).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { startEcho } from './lib/targets.mjs';
import { runLoad, countLines, childPids, sleep } from './lib/lifecycle.mjs';

const CLIENTS = 16;
const DURATION_MS = 15000;
const HUP_EVERY_MS = 2000;
const MIN_TUNNELS = 1000; // a loaded 2-CPU box still does far more; this only catches a stalled server

describe('lifecycle: reload (SIGHUP every 2 s) under load', () => {
  let srv;
  let echo;
  before(async () => {
    srv = await startServer({ workers: 2, set: { log_level: 'info', drain_timeout: 10 } });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); });

  it(`${CLIENTS} clients x ${DURATION_MS / 1000} s of 1 KiB echo tunnels: no failed connection, no corrupted byte`, { timeout: 40000 }, async () => {
    let hups = 0;
    const workerPids = new Set(childPids(srv.pid));
    let stopHup = false;
    const hupper = (async () => {
      const t0 = Date.now();
      while (!stopHup) {
        const next = t0 + (hups + 1) * HUP_EVERY_MS;
        while (!stopHup && Date.now() < next) await sleep(Math.min(50, next - Date.now()));
        if (stopHup || Date.now() > t0 + DURATION_MS - 500) break;
        process.kill(srv.pid, 'SIGHUP');
        hups++;
        await sleep(300);
        for (const p of childPids(srv.pid)) workerPids.add(p);
      }
    })();
    const stats = await runLoad({ port: srv.port, target: echo.target, token: srv.token, clients: CLIENTS, durationMs: DURATION_MS });
    stopHup = true;
    await hupper;

    const reloaded = countLines(srv, /reloaded: generation \d+ started/);
    const refused = srv.lines.filter((l) => /reload refused/.test(l));
    const deaths = srv.lines.filter((l) => /respawning in|killed by signal|core dumped/.test(l));
    const failed = stats.failedConnects + stats.brokenTunnels;
    console.log(`reload-under-load: tunnels=${stats.tunnels} failed_connections=${failed} (connect=${stats.failedConnects} mid-tunnel=${stats.brokenTunnels}) corrupted_bytes=${stats.corruptedBytes} sighups=${hups} reloaded_lines=${reloaded} worker_pids_seen=${workerPids.size}`);
    if (stats.errors.length) console.log(`first errors:\n  ${stats.errors.join('\n  ')}`);

    assert.equal(srv.exited, null, `the master exited during the reloads\n${srv.dumpLog()}`);
    assert.deepEqual(deaths, [], 'a worker crashed during the reloads');
    assert.deepEqual(refused, [], 'a valid configuration was refused on reload');
    assert.ok(hups >= 6, `only ${hups} SIGHUPs sent`);
    assert.equal(reloaded, hups, `every SIGHUP must start a new generation\n${srv.dumpLog()}`);
    assert.ok(workerPids.size >= 2 * (hups + 1) - 2, `worker pids seen ${workerPids.size}: generations were not replaced`);
    assert.equal(stats.corruptedBytes, 0, `corrupted bytes: ${stats.corruptedBytes}\n${stats.errors.join('\n')}`);
    assert.equal(failed, 0, `${failed} failed connections (connect=${stats.failedConnects}, mid-tunnel=${stats.brokenTunnels}) over ${stats.tunnels} tunnels:\n${stats.errors.join('\n')}\n--- server log ---\n${srv.dumpLog(30)}`);
    assert.ok(stats.tunnels > MIN_TUNNELS, `only ${stats.tunnels} tunnels completed in ${DURATION_MS} ms`);
  });
});
