// Admission: token buckets of new tunnels. rate_per_ip=2/s with a burst of 3: 127.0.0.1 gets 3 at
// once, then 429 "too many new connections" with Retry-After; 127.0.0.2 has its own bucket; after
// Retry-After seconds 127.0.0.1 gets in again. rate_global with a small burst refuses everyone
// past the burst. Tokens are only taken by admitted tunnels.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { startEcho } from './lib/targets.mjs';
import { echoRound } from './lib/lifecycle.mjs';
import {
  BODY_RATE, attempt, attemptMany, tally, refusalProblems, closeAll, sleep,
} from './lib/admission.mjs';

const T = { timeout: 30000 };

describe('admission: rate_per_ip=2 rate_per_ip_burst=3', () => {
  let srv;
  let echo;
  const held = [];
  after(async () => {
    closeAll(held);
    await srv?.stop();
    await echo?.close();
  });

  it('burst of 3 per address, then 429 with Retry-After; other addresses unaffected; refilled after Retry-After', T, async () => {
    echo = await startEcho();
    srv = await startServer({ workers: 2, set: { rate_per_ip: 2, rate_per_ip_burst: 3 } });

    // 4 at once from 127.0.0.1: the bucket holds 3 (and refills only 1 token per 500 ms)
    const t0 = Date.now();
    const a = await attemptMany(4, () => attempt(srv.port, echo.target));
    const span = Date.now() - t0;
    held.push(...a);
    console.log(`127.0.0.1, 4 at once (${span} ms): ${tally(a)}`);
    // (a 4th admission would need the 4 upgrades to spread over more than 500 ms)
    assert.equal(a.filter((r) => r.ok).length, 3, `${tally(a)}; the 4 attempts took ${span} ms`);
    const refused = a.find((r) => !r.ok);
    assert.deepEqual(refusalProblems(refused, { body: BODY_RATE }), [], JSON.stringify(refused));
    const retry = Number(refused.headers['retry-after']);
    // 2 tokens/s: the next one is at most 0.5 s away, rounded up to whole seconds
    assert.equal(retry, 1, `Retry-After ${retry}`);
    await srv.waitForLine(/admission refused client=127\.0\.0\.1:\d+ .*limit=rate_ip/, 3000);
    for (const r of a.filter((x) => x.ok)) assert.equal(await echoRound(r.tunnel, 128), 0);

    // 127.0.0.2 still gets its whole burst (and no more)
    const b = await attemptMany(4, () => attempt(srv.port, echo.target, { localAddress: '127.0.0.2' }));
    held.push(...b);
    console.log(`127.0.0.2, 4 at once: ${tally(b)}`);
    assert.equal(b.filter((r) => r.ok).length, 3, tally(b));
    assert.deepEqual(refusalProblems(b.find((r) => !r.ok), { body: BODY_RATE }), []);

    // refused attempts take no token: hammering while waiting does not push the refill back
    // (only while the next token is surely not there yet: < 350 ms of the 500 ms refill)
    for (let i = 0; i < 3 && Date.now() - t0 < 350; i++) {
      const r = await attempt(srv.port, echo.target);
      held.push(r);
      assert.equal(r.ok, false, `attempt ${i} during the wait was admitted (${Date.now() - t0} ms after the burst)`);
    }
    // after Retry-After seconds 127.0.0.1 gets in again
    await sleep(Math.max(0, retry * 1000 - (Date.now() - t0)) + 100);
    const c = await attempt(srv.port, echo.target);
    held.push(c);
    console.log(`127.0.0.1 ${Date.now() - t0} ms after the burst: ${tally([c])}`);
    assert.ok(c.ok, `after Retry-After: ${tally([c])} ${c.body}`);
    assert.equal(await echoRound(c.tunnel, 128), 0);
    // the limit is on new tunnels, not open ones: the 3 first tunnels are still open and relaying
    for (const r of a.filter((x) => x.ok)) assert.ok(r.tunnel.open);
  });
});

describe('admission: rate_global=1 rate_global_burst=3', () => {
  let srv;
  let echo;
  const held = [];
  after(async () => {
    closeAll(held);
    await srv?.stop();
    await echo?.close();
  });

  it('5 clients from 5 addresses at once → 3 admitted, 2 × 429 limit=rate_global', T, async () => {
    echo = await startEcho();
    srv = await startServer({ workers: 2, set: { rate_global: 1, rate_global_burst: 3 } });
    const r = await attemptMany(5, (i) => attempt(srv.port, echo.target, { localAddress: `127.0.0.${i + 1}` }));
    held.push(...r);
    console.log(`rate_global=1 burst=3, 5 addresses at once: ${tally(r)}`);
    assert.equal(r.filter((x) => x.ok).length, 3, tally(r));
    for (const x of r.filter((y) => !y.ok)) {
      assert.deepEqual(refusalProblems(x, { body: BODY_RATE }), [], JSON.stringify(x));
      assert.equal(Number(x.headers['retry-after']), 1, 'one token per second: Retry-After 1');
    }
    const lines = await srv.waitForLines(/admission refused client=127\.0\.0\.\d:\d+ .*limit=rate_global/, 2, 3000);
    assert.equal(lines.length, 2);
  });
});

describe('admission: rate_per_ip=1 burst=1 with rate_global=1 burst=2', () => {
  let srv;
  let echo;
  const held = [];
  after(async () => {
    closeAll(held);
    await srv?.stop();
    await echo?.close();
  });

  it('a per-address refusal takes no global token', T, async () => {
    echo = await startEcho();
    srv = await startServer({ workers: 1, set: { rate_per_ip: 1, rate_per_ip_burst: 1, rate_global: 1, rate_global_burst: 2 } });
    const seq = [];
    for (const addr of ['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.2', '127.0.0.3']) {
      const x = await attempt(srv.port, echo.target, { localAddress: addr });
      held.push(x);
      seq.push(x.ok ? 'ok' : `${x.status}`);
    }
    console.log(`.1 .1 .1 .2 .3 → ${seq.join(' ')}`);
    // .1 takes the global token #1; its next two are refused per address (no global token taken);
    // .2 takes global token #2; .3 finds the global bucket empty
    assert.deepEqual(seq, ['ok', '429', '429', 'ok', '429']);
    await srv.waitForLines(/admission refused client=127\.0\.0\.1:\d+ .*limit=rate_ip/, 2, 3000);
    await srv.waitForLine(/admission refused client=127\.0\.0\.3:\d+ .*limit=rate_global/, 3000);
  });
});
