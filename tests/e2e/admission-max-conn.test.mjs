// Admission: max_conn is one global count across all workers. 80 clients at once against
// max_conn=50 on 4 workers: exactly 50 tunnels (101 + working echo), exactly 30 refusals (429,
// Retry-After, JSON body); closing 10 frees exactly 10 slots; ech3_tunnels_open agrees.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { startEcho, startSource, closedPort } from './lib/targets.mjs';
import { openTunnel, openWs } from './lib/client.mjs';
import { rawRequest } from './lib/raw.mjs';
import { echoRound, waitWorkers } from './lib/lifecycle.mjs';
import {
  METRICS_TOKEN, BODY_CONN, attempt, attemptMany, tally, refusalProblems, waitTunnelsOpen, tunnelsOpen,
  refusalLines, closeAll, closeTunnels, sleep,
} from './lib/admission.mjs';

describe('admission: max_conn across 4 workers', () => {
  let srv;
  let echo;
  const held = [];
  after(async () => {
    closeAll(held);
    await srv?.stop();
    await echo?.close();
  });

  it('80 at once → exactly 50 tunnels + 30 × 429; 10 closed → exactly 10 of 15 new ones admitted', { timeout: 60000 }, async () => {
    echo = await startEcho();
    srv = await startServer({ workers: 4, set: { max_conn: 50, metrics_token: METRICS_TOKEN } });
    await waitWorkers(srv.pid, 4);

    // --- 80 clients at once
    const first = await attemptMany(80, () => attempt(srv.port, echo.target, { timeout: 10000 }));
    held.push(...first);
    const ok = first.filter((r) => r.ok);
    const refused = first.filter((r) => !r.ok);
    console.log(`max_conn=50, 80 at once: ${tally(first)}`);
    assert.equal(ok.length, 50, `admitted: ${tally(first)}`);
    assert.equal(refused.length, 30, `refused: ${tally(first)}`);
    for (const r of refused) assert.deepEqual(refusalProblems(r, { body: BODY_CONN }), [], JSON.stringify(r));
    // every admitted tunnel relays
    const bad = (await Promise.all(ok.map((r) => echoRound(r.tunnel, 512).catch((e) => `broken: ${e.message}`)))).filter((x) => x !== 0);
    assert.deepEqual(bad, [], 'admitted tunnels that did not relay');
    assert.equal(await waitTunnelsOpen(srv.port, 50, { timeout: 3000 }), 50);
    // log lines arrive through a pipe: wait for them (bounded), then count exactly
    await srv.waitForLines(/admission refused client=127\.0\.0\.1:\d+ .*limit=max_conn/, 30, 3000);
    const opened = await srv.waitForLines(/ tunnel open client=/, 50, 3000);
    await sleep(100);
    assert.equal(refusalLines(srv).length, 30, `refusal log lines:\n${refusalLines(srv).join('\n')}`);
    // the workers really shared the load (the limit is global, not per worker)
    const workersUsed = new Set(opened.map((l) => /ech3\[(\d+)\]/.exec(l)[1]));
    console.log(`tunnels spread over ${workersUsed.size} workers`);
    assert.ok(workersUsed.size >= 2, 'all tunnels landed on one worker; the global count was not exercised');

    // --- 10 of them close; their slots come back
    const closing = ok.slice(0, 10).map((r) => r.tunnel);
    await closeTunnels(closing);
    assert.equal(await waitTunnelsOpen(srv.port, 40, { timeout: 5000 }), 40);

    // --- 15 new attempts at once: exactly 10 fit
    const second = await attemptMany(15, () => attempt(srv.port, echo.target, { timeout: 10000 }));
    held.push(...second);
    const ok2 = second.filter((r) => r.ok);
    const refused2 = second.filter((r) => !r.ok);
    console.log(`after closing 10, 15 new attempts: ${tally(second)}`);
    assert.equal(ok2.length, 10, `second wave: ${tally(second)}`);
    assert.equal(refused2.length, 5, `second wave: ${tally(second)}`);
    for (const r of refused2) assert.deepEqual(refusalProblems(r, { body: BODY_CONN }), [], JSON.stringify(r));
    for (const r of ok2) assert.equal(await echoRound(r.tunnel, 256), 0);
    const open = await tunnelsOpen(srv.port);
    console.log(`ech3_tunnels_open=${open}`);
    assert.equal(open, 50);
    // the 40 survivors of the first wave still relay
    for (const r of ok.slice(10)) assert.equal(await echoRound(r.tunnel, 128), 0);

    // --- everything closes → the gauge returns to 0
    closeAll(held);
    assert.equal(await waitTunnelsOpen(srv.port, 0, { timeout: 5000 }), 0);
  });
});

describe('admission: the slot is given back however the tunnel ends (max_conn=1)', () => {
  let srv;
  let echo;
  let source;
  const held = [];
  after(async () => {
    closeAll(held);
    await srv?.stop();
    await echo?.close();
    await source?.close();
  });

  it('CLOSE command, close frame, TCP reset, target EOF, connect error, idle timeout, no CONNECT at all', { timeout: 60000 }, async () => {
    echo = await startEcho();
    source = await startSource(Buffer.from('bye'));
    const refusedPort = await closedPort();
    srv = await startServer({ workers: 2, set: { max_conn: 1, idle_timeout: 1, metrics_token: METRICS_TOKEN } });

    const readyz = async () => (await rawRequest(srv.port, 'GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status;
    // [name, open() → end(), ends by itself at once (no "while open" checks)]
    const cases = [
      ['client CLOSE command', async () => { const t = await openTunnel(srv.port, echo.target); return async () => { await t.sendText('CLOSE'); }; }],
      ['WebSocket close frame', async () => { const t = await openTunnel(srv.port, echo.target); return async () => { t.close(1000); }; }],
      ['client TCP reset', async () => { const t = await openTunnel(srv.port, echo.target); return async () => { t.terminate(); }; }],
      ['idle timeout (1 s)', async () => { const t = await openTunnel(srv.port, echo.target); return async () => { await t.waitClose(5000); }; }],
      ['WebSocket without CONNECT, client leaves', async () => { const t = await openWs(srv.port); return async () => { t.terminate(); }; }],
      ['target EOF', async () => { const t = await openTunnel(srv.port, source.target, { expect: null }); return async () => { await t.waitClose(5000); }; }, true],
      ['connect error', async () => { const t = await openTunnel(srv.port, `127.0.0.1:${refusedPort}`, { expect: null }); return async () => { await t.waitClose(5000); }; }, true],
    ];
    for (const [name, open, selfEnding] of cases) {
      const end = await open();
      if (!selfEnding) {
        assert.equal(await waitTunnelsOpen(srv.port, 1, { timeout: 3000 }), 1, name);
        assert.equal(await readyz(), 503, `${name}: /readyz while full`);
        const blocked = await attempt(srv.port, echo.target);
        held.push(blocked);
        assert.equal(blocked.status, 429, `${name}: a second tunnel while the first is open: ${tally([blocked])}`);
      }
      const t0 = Date.now();
      await end();
      await waitTunnelsOpen(srv.port, 0, { timeout: 3000 });
      console.log(`${name}: slot back ${Date.now() - t0} ms after the end began`);
      assert.equal(await readyz(), 200, `${name}: /readyz after the release`);
    }
    const last = await attempt(srv.port, echo.target);
    held.push(last);
    assert.ok(last.ok, `a tunnel after all that: ${tally([last])}`);
  });
});
