// Admission: a SIGKILLed worker's slots come back. 20 tunnels fill max_conn=20 on 2 workers; the
// test maps every tunnel to the worker that holds it (the worker's `tunnel open client=IP:PORT`
// line against the client's local port), kills one worker, and checks that ech3_tunnels_open
// drops by exactly that worker's tunnels, the other worker's tunnels keep relaying, and exactly
// as many new tunnels as were freed are admitted again.
// (A worker dying while it holds the admission semaphore is covered by tests/unit/test_admission.c.)
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { startEcho } from './lib/targets.mjs';
import { echoRound, waitWorkers, childPids, waitFor, sleep } from './lib/lifecycle.mjs';
import {
  METRICS_TOKEN, BODY_CONN, attempt, attemptMany, tally, refusalProblems, waitTunnelsOpen, tunnelsOpen, closeAll,
} from './lib/admission.mjs';

describe('admission: slots of a killed worker are reclaimed', () => {
  let srv;
  let echo;
  const held = [];
  after(async () => {
    closeAll(held);
    await srv?.stop();
    await echo?.close();
  });

  it('SIGKILL one worker → the gauge drops by its tunnels, the others relay, exactly the freed slots are admitted again', { timeout: 60000 }, async () => {
    echo = await startEcho();
    srv = await startServer({ workers: 2, set: { max_conn: 20, metrics_token: METRICS_TOKEN, log_level: 'info' } });
    const workers = await waitWorkers(srv.pid, 2);

    // --- fill max_conn
    const first = await attemptMany(20, () => attempt(srv.port, echo.target));
    held.push(...first);
    assert.equal(first.filter((r) => r.ok).length, 20, `opening 20 under max_conn=20: ${tally(first)}`);
    assert.equal(await waitTunnelsOpen(srv.port, 20, { timeout: 3000 }), 20);
    const full = await attempt(srv.port, echo.target);
    held.push(full);
    assert.deepEqual(refusalProblems(full, { body: BODY_CONN }), [], 'the 21st tunnel was not refused properly');

    // --- which worker holds which tunnel
    const openLines = await srv.waitForLines(/ tunnel open client=127\.0\.0\.1:\d+ /, 20, 5000);
    const owner = new Map(); // client port -> worker pid
    for (const l of openLines) {
      const m = /ech3\[(\d+)\]: .* tunnel open client=127\.0\.0\.1:(\d+) /.exec(l);
      if (m) owner.set(Number(m[2]), Number(m[1]));
    }
    const byWorker = new Map(workers.map((p) => [p, []]));
    for (const r of first) {
      const pid = owner.get(r.localPort);
      assert.ok(pid !== undefined, `no 'tunnel open' line for client port ${r.localPort}`);
      assert.ok(byWorker.has(pid), `tunnel on port ${r.localPort} logged by ${pid}, not one of the workers ${workers}`);
      byWorker.get(pid).push(r.tunnel);
    }
    const counts = workers.map((p) => `${p}:${byWorker.get(p).length}`).join(' ');
    // the victim: a worker holding tunnels (the one holding fewer, if both do)
    const [victim, other] = [...workers].sort((a, b) => (byWorker.get(a).length || 99) - (byWorker.get(b).length || 99));
    const victimTunnels = byWorker.get(victim);
    const otherTunnels = byWorker.get(other);
    const k = victimTunnels.length;
    console.log(`tunnels per worker: ${counts}; killing ${victim} (holds ${k})`);
    assert.ok(k > 0);

    // --- kill it
    process.kill(victim, 'SIGKILL');
    await srv.waitForLine(new RegExp(`\\(pid ${victim}\\) killed by signal 9`), 3000);
    // its tunnels end (bounded)
    const closes = await Promise.all(victimTunnels.map((t) => t.waitClose(5000).then((c) => c.code, (e) => `hang: ${e.message}`)));
    assert.ok(closes.every((c) => typeof c === 'number'), `tunnels of the killed worker did not close: ${closes}`);
    // the gauge drops by exactly k and stays there
    const dropped = await waitTunnelsOpen(srv.port, 20 - k, { timeout: 5000 });
    await sleep(300);
    const settled = await tunnelsOpen(srv.port);
    console.log(`ech3_tunnels_open: 20 → ${dropped} → ${settled} after the kill (expected ${20 - k})`);
    assert.equal(settled, 20 - k, 'ech3_tunnels_open moved after settling');
    // the other worker's tunnels keep relaying
    for (const t of otherTunnels) {
      assert.ok(t.open, 'a tunnel of the surviving worker was closed');
      assert.equal(await echoRound(t, 1024), 0, 'a tunnel of the surviving worker corrupted');
    }
    // a replacement worker comes up
    await waitFor(() => { const c = childPids(srv.pid); return c.length === 2 && !c.includes(victim) ? c : null; },
      { timeout: 3000, what: 'a replacement worker' });

    // --- exactly k new tunnels fit again (ask for k + 3 at once)
    const second = await attemptMany(k + 3, () => attempt(srv.port, echo.target, { timeout: 8000 }));
    held.push(...second);
    console.log(`after the kill, ${k + 3} new attempts: ${tally(second)}`);
    assert.equal(second.filter((r) => r.ok).length, k, `new attempts: ${tally(second)}`);
    for (const r of second.filter((x) => !x.ok)) assert.deepEqual(refusalProblems(r, { body: BODY_CONN }), [], JSON.stringify(r));
    for (const r of second.filter((x) => x.ok)) assert.equal(await echoRound(r.tunnel, 256), 0);
    assert.equal(await tunnelsOpen(srv.port), 20);

    // --- and everything is given back at the end
    closeAll(held);
    assert.equal(await waitTunnelsOpen(srv.port, 0, { timeout: 5000 }), 0);
    assert.equal(srv.exited, null, 'the master exited');
  });
});
