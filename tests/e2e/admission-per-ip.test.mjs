// Admission: max_conn_per_ip counts open tunnels per client address (the TCP peer here: no
// trusted proxies). 127.0.0.1 gets 3, its 4th is refused with 429; 127.0.0.2 (the client socket
// bound to it; Linux routes all of 127/8 to lo) still gets its own 3; a closed tunnel gives its
// address a slot back.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { startEcho } from './lib/targets.mjs';
import { echoRound } from './lib/lifecycle.mjs';
import {
  METRICS_TOKEN, BODY_CONN, attempt, attemptMany, tally, refusalProblems, waitTunnelsOpen, closeAll,
  closeTunnels,
} from './lib/admission.mjs';

describe('admission: max_conn_per_ip=3', () => {
  let srv;
  let echo;
  const held = [];
  after(async () => {
    closeAll(held);
    await srv?.stop();
    await echo?.close();
  });

  it('4th concurrent tunnel from 127.0.0.1 → 429 while 127.0.0.2 still opens 3', { timeout: 30000 }, async () => {
    echo = await startEcho();
    srv = await startServer({ workers: 2, set: { max_conn_per_ip: 3, metrics_token: METRICS_TOKEN } });

    const a = await attemptMany(3, () => attempt(srv.port, echo.target));
    held.push(...a);
    assert.equal(a.filter((r) => r.ok).length, 3, `127.0.0.1, first 3: ${tally(a)}`);
    const a4 = await attempt(srv.port, echo.target);
    held.push(a4);
    console.log(`127.0.0.1: 3 admitted, 4th: ${tally([a4])}`);
    assert.deepEqual(refusalProblems(a4, { body: BODY_CONN }), [], 'the 4th tunnel from 127.0.0.1');
    // log lines arrive through a pipe: wait for them (bounded)
    await srv.waitForLine(/admission refused client=127\.0\.0\.1:\d+ .*limit=per_ip/, 3000);

    // 5 at once from 127.0.0.2: exactly 3 fit
    const b = await attemptMany(5, () => attempt(srv.port, echo.target, { localAddress: '127.0.0.2' }));
    held.push(...b);
    console.log(`127.0.0.2, 5 at once: ${tally(b)}`);
    assert.equal(b.filter((r) => r.ok).length, 3, `127.0.0.2: ${tally(b)}`);
    for (const r of b.filter((x) => !x.ok)) assert.deepEqual(refusalProblems(r, { body: BODY_CONN }), [], JSON.stringify(r));
    for (const r of b.filter((x) => x.ok)) {
      assert.equal(r.localAddress, '127.0.0.2');
      assert.equal(await echoRound(r.tunnel, 256), 0);
    }
    await srv.waitForLines(/tunnel open client=127\.0\.0\.2:\d+ /, 3, 3000);
    await srv.waitForLines(/admission refused client=127\.0\.0\.2:\d+ .*limit=per_ip/, 2, 3000);
    assert.equal(await waitTunnelsOpen(srv.port, 6), 6);

    // 127.0.0.1 closes one: it may open one again (and only one)
    await closeTunnels([a[0].tunnel]);
    await waitTunnelsOpen(srv.port, 5);
    const c = await attemptMany(2, () => attempt(srv.port, echo.target));
    held.push(...c);
    console.log(`127.0.0.1 after closing one, 2 at once: ${tally(c)}`);
    assert.equal(c.filter((r) => r.ok).length, 1, tally(c));
    // a third address is not limited by the other two
    const d = await attempt(srv.port, echo.target, { localAddress: '127.0.0.3' });
    held.push(d);
    assert.ok(d.ok, `127.0.0.3: ${tally([d])}`);
  });
});
