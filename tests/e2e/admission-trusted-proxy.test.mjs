// Admission behind proxies: with trusted_proxies=127.0.0.1/32, a connection from 127.0.0.1 is
// counted (and logged) as the client its X-Forwarded-For names (the rightmost entry that is not a
// trusted proxy), or its CF-Connecting-IP when there is no X-Forwarded-For. From 127.0.0.2 (not
// trusted) both headers are ignored: the client is the TCP peer 127.0.0.2:PORT.
// max_conn_per_ip=1 makes the counting visible: a second tunnel for the same client gets 429.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { startEcho } from './lib/targets.mjs';
import { echoRound } from './lib/lifecycle.mjs';
import { BODY_CONN, attempt, tally, refusalProblems, closeAll } from './lib/admission.mjs';

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('admission: trusted_proxies=127.0.0.1/32 max_conn_per_ip=1', () => {
  let srv;
  let echo;
  const held = [];
  after(async () => {
    closeAll(held);
    await srv?.stop();
    await echo?.close();
  });

  const open = async (what, opts) => {
    const r = await attempt(srv.port, echo.target, opts);
    held.push(r);
    console.log(`${what}: ${tally([r])}`);
    return r;
  };
  const admittedAs = async (r, client) => {
    assert.ok(r.ok, `expected 101, got ${r.status} ${r.body}`);
    assert.equal(await echoRound(r.tunnel, 128), 0);
    await srv.waitForLine(new RegExp(`tunnel open client=${esc(client)} `), 3000);
  };
  // client: the exact logged address, or a RegExp for it; n: how many such refusal lines by now
  const refusedAs = async (r, client, n = 1) => {
    assert.deepEqual(refusalProblems(r, { body: BODY_CONN }), [], JSON.stringify(r));
    const c = client instanceof RegExp ? client.source : esc(client);
    await srv.waitForLines(new RegExp(`admission refused client=${c} .*limit=per_ip`), n, 3000);
  };

  it('X-Forwarded-For / CF-Connecting-IP from the trusted peer name the client; from others they are ignored', { timeout: 30000 }, async () => {
    echo = await startEcho();
    srv = await startServer({ workers: 2, set: { trusted_proxies: '127.0.0.1/32', max_conn_per_ip: 1 } });

    // two different forwarded clients behind the same trusted proxy
    await admittedAs(await open('127.0.0.1 XFF 203.0.113.7', { headers: { 'X-Forwarded-For': '203.0.113.7' } }), '203.0.113.7');
    await admittedAs(await open('127.0.0.1 XFF 203.0.113.8', { headers: { 'X-Forwarded-For': '203.0.113.8' } }), '203.0.113.8');
    // the same forwarded client again: its one slot is taken
    await refusedAs(await open('127.0.0.1 XFF 203.0.113.7 again', { headers: { 'X-Forwarded-For': '203.0.113.7' } }), '203.0.113.7');
    // IPv4 and v4-mapped IPv6 are one address
    await refusedAs(await open('127.0.0.1 XFF ::ffff:203.0.113.8', { headers: { 'X-Forwarded-For': '::ffff:203.0.113.8' } }), '::ffff:203.0.113.8');

    // the rightmost untrusted entry counts: a client-supplied left part is ignored ...
    await admittedAs(await open('127.0.0.1 XFF "203.0.113.7, 198.51.100.21"', { headers: { 'X-Forwarded-For': '203.0.113.7, 198.51.100.21' } }), '198.51.100.21');
    // ... and trusted proxies on the right are skipped
    await admittedAs(await open('127.0.0.1 XFF "198.51.100.20, 127.0.0.1"', { headers: { 'X-Forwarded-For': '198.51.100.20, 127.0.0.1' } }), '198.51.100.20');

    // CF-Connecting-IP when there is no X-Forwarded-For
    await admittedAs(await open('127.0.0.1 CF 198.51.100.5', { headers: { 'CF-Connecting-IP': '198.51.100.5' } }), '198.51.100.5');
    await refusedAs(await open('127.0.0.1 CF 198.51.100.5 again', { headers: { 'CF-Connecting-IP': '198.51.100.5' } }), '198.51.100.5');
    // with both, X-Forwarded-For wins
    await admittedAs(await open('127.0.0.1 XFF 198.51.100.30 + CF 198.51.100.31', {
      headers: { 'X-Forwarded-For': '198.51.100.30', 'CF-Connecting-IP': '198.51.100.31' },
    }), '198.51.100.30');

    // the trusted proxy's own connections without headers count as the proxy itself
    const own = await open('127.0.0.1 without headers', {});
    await admittedAs(own, `127.0.0.1:${own.localPort}`);

    // from 127.0.0.2 (not trusted) the headers are ignored: logged and counted as 127.0.0.2
    const u1 = await open('127.0.0.2 XFF 203.0.113.9', { localAddress: '127.0.0.2', headers: { 'X-Forwarded-For': '203.0.113.9' } });
    await admittedAs(u1, `127.0.0.2:${u1.localPort}`);
    const u2 = await open('127.0.0.2 XFF 203.0.113.10', { localAddress: '127.0.0.2', headers: { 'X-Forwarded-For': '203.0.113.10' } });
    assert.ok(!u2.ok, 'a second tunnel from 127.0.0.2 was admitted: its X-Forwarded-For was believed');
    // the refusal names the peer (the local port of a refused socket is not kept: match any port)
    await refusedAs(u2, /127\.0\.0\.2:\d+/, 1);
    const u3 = await open('127.0.0.2 CF 198.51.100.60', { localAddress: '127.0.0.2', headers: { 'CF-Connecting-IP': '198.51.100.60' } });
    await refusedAs(u3, /127\.0\.0\.2:\d+/, 2);
    assert.ok(!srv.lines.some((l) => /client=(203\.0\.113\.(9|10)|198\.51\.100\.60)\b/.test(l)), 'an untrusted peer\'s header reached the log as the client');
  });

  // RFC 9110 §5.3: several X-Forwarded-For lines are one list, in order; a proxy that adds its own
  // line (HAProxy's `option forwardfor`, `add-header`) puts the real client in the LAST line, after
  // whatever the client sent itself.
  it('several X-Forwarded-For header lines: the rightmost untrusted entry of all of them counts', { timeout: 15000 }, async () => {
    // 203.0.113.7 holds its one slot (first test); a client claiming to be it must not lose its own
    assert.ok(srv, 'the first test did not run');
    const re = /admission refused client=\S+ /;
    const before = srv.lines.filter((l) => re.test(l)).length;
    const r = await open('127.0.0.1 XFF lines ["203.0.113.7", "198.51.100.40"]', {
      headers: { 'X-Forwarded-For': ['203.0.113.7', '198.51.100.40'] },
    });
    if (!r.ok) {
      const logged = (await srv.waitForLines(re, before + 1, 3000).catch(() => [])).at(-1);
      assert.fail(`refused (${r.status} ${r.body}): the client-supplied first line was taken as the client address; log: ${logged}`);
    }
    await admittedAs(r, '198.51.100.40');
  });
});
