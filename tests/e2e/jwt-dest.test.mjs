// JWT destination claim "ech3_dest": a CONNECT outside the token's list gets
// `ERROR:destination not allowed by token...` and a close 1000, and never reaches the target;
// a CONNECT inside it relays normally.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho, haveIPv6Loopback } from './lib/targets.mjs';
import {
  hmacSecret, makeJwt, claims, rawUpgrade, assert401, CARRIERS, assertNoSecretsLogged,
} from './lib/jwt.mjs';

const T = { timeout: 20000 };

describe('jwt ech3_dest claim', () => {
  let srv;
  let echoA;
  let echoB;
  let echo6;
  const secret = hmacSecret();
  const tokFor = (sub, dest) => makeJwt({ key: secret, payload: claims(sub, dest === undefined ? {} : { ech3_dest: dest }) });

  before(async () => {
    srv = await startServer({ env: { ECH3_JWT_SECRET: secret }, set: { log_level: 'info' } });
    echoA = await startEcho();
    echoB = await startEcho();
    if (await haveIPv6Loopback()) echo6 = await startEcho({ host: '::1' });
  });
  after(async () => { await srv?.stop(); await echoA?.close(); await echoB?.close(); await echo6?.close(); });

  /** CONNECT with tok; returns 'CONNECTED' after an echo round, or the ERROR text (after checking the close). */
  async function tryConnect(tok, target, tgt) {
    const before = tgt ? tgt.conns.length : 0;
    const t = await openTunnel(srv.port, target, { ...CARRIERS.bearer(tok), expect: null });
    const reply = await t.nextText(8000);
    if (reply === 'CONNECTED') {
      await t.sendBinary(Buffer.from('dest-ok'));
      assert.equal((await t.readBytes(7)).toString(), 'dest-ok');
      t.close();
      return reply;
    }
    const c = await t.waitClose(5000);
    assert.equal(c.code, 1000, `close code after ${reply}`);
    if (tgt) assert.equal(tgt.conns.length, before, `the refused target ${target} got a connection`);
    return reply;
  }

  const refused = (reply, target) => {
    assert.match(reply, /^ERROR:destination not allowed by token/, `CONNECT:${target} → ${reply}`);
  };

  it('["127.0.0.1:<A>"]: A is relayed, B (another port) is refused with ERROR: and close 1000', T, async () => {
    const tok = tokFor('dest-one', [`127.0.0.1:${echoA.port}`]);
    assert.equal(await tryConnect(tok, echoA.target, echoA), 'CONNECTED');
    const reply = await tryConnect(tok, echoB.target, echoB);
    refused(reply, echoB.target);
    assert.ok(reply.includes(echoB.target), `the ERROR names the target: ${reply}`);
    const line = await srv.waitForLine(new RegExp(`tunnel refused .*target=127\\.0\\.0\\.1:${echoB.port}: destination not allowed by token`), 3000);
    assert.match(line, /client=127\.0\.0\.1:\d+/);
    const access = await srv.waitForLine(new RegExp(`access .*user=dest-one .*target=127\\.0\\.0\\.1:${echoB.port}\\b`), 3000);
    assert.match(access, /\bup=0\b/);
  });

  it('port range: ["127.0.0.1:lo-hi"] allows ports inside, refuses one outside', T, async () => {
    const lo = Math.min(echoA.port, echoB.port);
    const hi = Math.max(echoA.port, echoB.port);
    const tok = tokFor('dest-range', [`127.0.0.1:${lo}-${hi}`]);
    assert.equal(await tryConnect(tok, echoA.target, echoA), 'CONNECTED');
    assert.equal(await tryConnect(tok, echoB.target, echoB), 'CONNECTED');
    refused(await tryConnect(tok, `127.0.0.1:${hi + 1}`), `127.0.0.1:${hi + 1}`);
    refused(await tryConnect(tok, `127.0.0.1:${lo - 1}`), `127.0.0.1:${lo - 1}`);
  });

  it('host "*" with a fixed port, and an exact host with port "*"', T, async () => {
    const anyHost = tokFor('dest-anyhost', [`*:${echoA.port}`]);
    assert.equal(await tryConnect(anyHost, echoA.target, echoA), 'CONNECTED');
    refused(await tryConnect(anyHost, echoB.target, echoB), echoB.target);
    const anyPort = tokFor('dest-anyport', ['127.0.0.1:*']);
    assert.equal(await tryConnect(anyPort, echoA.target, echoA), 'CONNECTED');
    assert.equal(await tryConnect(anyPort, echoB.target, echoB), 'CONNECTED');
    refused(await tryConnect(anyPort, `127.0.0.2:${echoA.port}`), `127.0.0.2:${echoA.port}`);
  });

  it('names are matched as names: "localhost:*" allows CONNECT:localhost but not CONNECT:127.0.0.1; case-insensitive', T, async () => {
    const tok = tokFor('dest-name', ['LocalHost:*']);
    assert.equal(await tryConnect(tok, `localhost:${echoA.port}`), 'CONNECTED');
    assert.equal(await tryConnect(tok, `LOCALHOST:${echoA.port}`), 'CONNECTED');
    refused(await tryConnect(tok, echoA.target, echoA), echoA.target);
  });

  it('"*.suffix" matches names under the suffix only, never the suffix itself or an IP', T, async () => {
    const tok = tokFor('dest-suffix', [`*.localhost:${echoA.port}`]);
    refused(await tryConnect(tok, `localhost:${echoA.port}`), 'localhost');
    refused(await tryConnect(tok, echoA.target, echoA), echoA.target);
    refused(await tryConnect(tok, `evil-localhost:${echoA.port}`), 'evil-localhost');
    // a name under the suffix passes the token check (it may then fail to resolve: not a token refusal)
    const t = await openTunnel(srv.port, `a.localhost:${echoA.port}`, { ...CARRIERS.bearer(tok), expect: null });
    const reply = await t.nextText(8000);
    assert.doesNotMatch(reply, /not allowed by token/, `a.localhost was refused by the token: ${reply}`);
    t.terminate();
  });

  it('IPv6 "[::1]:<port>" allows CONNECT:[::1]:<port> (and only that port)', T, async (t) => {
    if (!echo6) { t.skip('no IPv6 loopback'); return; }
    const tok = tokFor('dest-v6', [`[0:0:0:0:0:0:0:1]:${echo6.port}`]);
    assert.equal(await tryConnect(tok, echo6.target, echo6), 'CONNECTED');
    refused(await tryConnect(tok, `[::1]:${echo6.port + 1}`), 'other v6 port');
    refused(await tryConnect(tok, `127.0.0.1:${echo6.port}`), 'v4 with the same port');
  });

  it('an empty list allows nothing; no claim allows everything', T, async () => {
    refused(await tryConnect(tokFor('dest-empty', []), echoA.target, echoA), echoA.target);
    assert.equal(await tryConnect(tokFor('dest-none'), echoB.target, echoB), 'CONNECTED');
  });

  it('the claim is enforced through every carrier', T, async () => {
    const tok = tokFor('dest-carriers', [`127.0.0.1:${echoA.port}`]);
    for (const carrier of ['bearer', 'protocol', 'query']) {
      const t = await openTunnel(srv.port, echoB.target, { ...CARRIERS[carrier](tok), expect: null });
      refused(await t.nextText(8000), `${carrier}`);
      assert.equal((await t.waitClose()).code, 1000);
      const ok = await openTunnel(srv.port, echoA.target, CARRIERS[carrier](tok));
      ok.close();
    }
  });

  it('PYIP fallback hosts outside the claim are dropped (the claim cannot be bypassed through them)', T, async () => {
    // echo on 127.0.0.2:P; nothing on 127.0.0.3:P, so CONNECT:127.0.0.3:P falls back to the PYIP hosts
    const fb = await startEcho({ host: '127.0.0.2' });
    try {
      const target = `127.0.0.3:${fb.port}`;
      const only3 = tokFor('dest-pyip', [target]);
      const t = await openTunnel(srv.port, target, { ...CARRIERS.bearer(only3), expect: null, first: 'x', suffix: '|PYIP=127.0.0.2' });
      const reply = await t.nextText(8000);
      assert.match(reply, /^ERROR:/, `the fallback outside the claim was used: ${reply}`);
      await t.waitClose();
      assert.equal(fb.conns.length, 0, 'the PYIP host outside the claim was contacted');
      // control: with the fallback inside the claim, the same CONNECT goes through it
      const both = tokFor('dest-pyip-ok', [target, `127.0.0.2:${fb.port}`]);
      const ok = await openTunnel(srv.port, target, { ...CARRIERS.bearer(both), first: 'x', suffix: '|PYIP=127.0.0.2' });
      assert.equal((await ok.readBytes(1)).toString(), 'x');
      assert.equal(fb.conns.length, 1);
      ok.close();
      // a target outside the claim is refused before any fallback is considered
      const t2 = await openTunnel(srv.port, `127.0.0.2:${fb.port}`, { ...CARRIERS.bearer(only3), expect: null, first: 'x', suffix: '|PYIP=127.0.0.3' });
      refused(await t2.nextText(8000), 'target outside the claim, with PYIP');
      t2.terminate();
    } finally {
      await fb.close();
    }
  });

  it('malformed destination entries → 401 invalid_claims', T, async () => {
    for (const dest of [['127.0.0.1'], ['10.1:22'], ['host:0'], ['host:70000'], ['host:9-8'], ['::1:80'], ['[nope]:80'], ['*.:80'], ['*.10.0.0.1:80'], [1], [['a:1']],
      Array.from({ length: 17 }, (_, i) => `h${i}:1`)]) {
      const res = await rawUpgrade(srv.port, tokFor('bad-dest', dest), 'bearer');
      assert401(res, 'invalid_claims', JSON.stringify(dest));
    }
  });

  it('no server log line contains a token or the secret', T, async () => {
    assertNoSecretsLogged(srv, [secret]);
  });
});
