// The static token keeps working beside JWT auth; a JWT's verdict is final (a bad JWT is not
// rescued by a good static token in a later carrier, nor by anonymous mode); without JWT keys a
// JWT-shaped string is just a wrong static token.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, DEFAULT_TOKEN } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import { rawRequest, upgradeRequest } from './lib/raw.mjs';
import {
  hmacSecret, makeJwt, claims, nowSec, rawUpgrade, assert401, CARRIERS, assertNoSecretsLogged,
} from './lib/jwt.mjs';

const T = { timeout: 20000 };

describe('jwt beside the static token', () => {
  let srv;
  let echo;
  const secret = hmacSecret();
  before(async () => {
    srv = await startServer({ env: { ECH3_JWT_SECRET: secret }, set: { log_level: 'info' } });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); });

  it('the serving line reports auth=token+jwt', T, async () => {
    await srv.waitForLine(/serving: .*auth=token\+jwt\b/, 3000);
  });

  it('the static TOKEN works in every carrier (Sec-WebSocket-Protocol, Bearer, query), user=-', T, async () => {
    for (const carrier of ['protocol', 'bearer', 'query']) {
      const t = await openTunnel(srv.port, echo.target, CARRIERS[carrier](DEFAULT_TOKEN));
      const port = t.ws._socket.localPort;
      await t.sendBinary(Buffer.from('static'));
      assert.equal((await t.readBytes(6)).toString(), 'static');
      t.close();
      await t.waitClose();
      const line = await srv.waitForLine(new RegExp(`access client=127\\.0\\.0\\.1:${port} `), 5000);
      assert.match(line, /\buser=-\s/, line);
    }
  });

  it('the old single-protocol form (Sec-WebSocket-Protocol: <token>) still works and is echoed', T, async () => {
    const res = await rawRequest(srv.port, upgradeRequest({ token: DEFAULT_TOKEN }).request);
    assert.equal(res.status, 101);
    assert.equal(res.headers['sec-websocket-protocol'], DEFAULT_TOKEN);
  });

  it('a wrong static token → 401 {"error":"unauthorized"} without a reason, logged as invalid_token', T, async () => {
    const res = await rawRequest(srv.port, upgradeRequest({ protocolHeader: 'not-the-token' }).request);
    assert401(res, null);
    await srv.waitForLine(/auth refused client=127\.0\.0\.1:\d+ user=- reason=invalid_token$/, 3000);
    const none = await rawRequest(srv.port, upgradeRequest({ protocolHeader: null }).request);
    assert401(none, null);
    await srv.waitForLine(/auth refused client=127\.0\.0\.1:\d+ user=- reason=missing_token$/, 3000);
  });

  it('a bad JWT in Bearer is final: the valid static token in Sec-WebSocket-Protocol does not rescue it', T, async () => {
    const bad = makeJwt({ key: hmacSecret(), payload: claims('bad-first') });
    const { request } = upgradeRequest({ protocolHeader: DEFAULT_TOKEN, extra: [`Authorization: Bearer ${bad}`] });
    assert401(await rawRequest(srv.port, request), 'invalid_signature');
    // the same in the protocol list: an expired JWT entry before the static token entry
    const expired = makeJwt({ key: secret, payload: claims('expired-first', { exp: nowSec() - 3600 }) });
    assert401(await rawRequest(srv.port, upgradeRequest({ protocolHeader: `${expired}, ${DEFAULT_TOKEN}` }).request), 'expired');
    // and a bad JWT in the protocol with a good static token in the query
    const { request: r3 } = upgradeRequest({ protocolHeader: bad, path: `/?token=${DEFAULT_TOKEN}` });
    assert401(await rawRequest(srv.port, r3), 'invalid_signature');
  });

  it('a good JWT in Bearer with an unrelated protocol offered → 101 echoing that protocol', T, async () => {
    const tok = makeJwt({ key: secret, payload: claims('good-bearer') });
    const { request } = upgradeRequest({ protocolHeader: 'wrong-static-token', extra: [`Authorization: Bearer ${tok}`] });
    const res = await rawRequest(srv.port, request);
    assert.equal(res.status, 101, res.raw.toString('latin1'));
    assert.equal(res.headers['sec-websocket-protocol'], 'wrong-static-token');
  });

  it('a wrong static token in Bearer falls through to a valid JWT in the query', T, async () => {
    const tok = makeJwt({ key: secret, payload: claims('query-after-bearer') });
    const { request } = upgradeRequest({ protocolHeader: null, path: `/?token=${tok}`, extra: ['Authorization: Bearer not-the-token'] });
    const res = await rawRequest(srv.port, request);
    assert.equal(res.status, 101, res.raw.toString('latin1'));
  });

  it('no server log line contains a token, the static token or the secret', T, async () => {
    assertNoSecretsLogged(srv, [secret, DEFAULT_TOKEN]);
  });
});

describe('jwt with anonymous mode (ECH3_ALLOW_ANONYMOUS=1, no static token)', () => {
  let srv;
  let echo;
  const secret = hmacSecret();
  before(async () => {
    srv = await startServer({ token: null, env: { ECH3_JWT_SECRET: secret, ECH3_ALLOW_ANONYMOUS: '1' }, set: { log_level: 'info' } });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); });

  it('no credential → accepted as user=anonymous', T, async () => {
    const t = await openTunnel(srv.port, echo.target, { token: null });
    const port = t.ws._socket.localPort;
    t.close();
    await t.waitClose();
    const line = await srv.waitForLine(new RegExp(`access client=127\\.0\\.0\\.1:${port} `), 5000);
    assert.match(line, /\buser=anonymous\s/, line);
  });

  it('a valid JWT still names its subject', T, async () => {
    const t = await openTunnel(srv.port, echo.target, CARRIERS.bearer(makeJwt({ key: secret, payload: claims('named') })));
    const port = t.ws._socket.localPort;
    t.close();
    await t.waitClose();
    const line = await srv.waitForLine(new RegExp(`access client=127\\.0\\.0\\.1:${port} `), 5000);
    assert.match(line, /\buser=named\s/, line);
  });

  it('a bad or expired JWT is refused (401 with reason), not downgraded to anonymous', T, async () => {
    for (const carrier of ['bearer', 'protocol', 'query']) {
      assert401(await rawUpgrade(srv.port, makeJwt({ key: hmacSecret(), payload: claims('x') }), carrier), 'invalid_signature', carrier);
      assert401(await rawUpgrade(srv.port, makeJwt({ key: secret, payload: claims('x', { exp: nowSec() - 3600 }) }), carrier), 'expired', carrier);
    }
  });

  it('a destination-limited JWT stays limited although anonymous users are not', T, async () => {
    const tok = makeJwt({ key: secret, payload: claims('limited', { ech3_dest: ['127.0.0.1:1'] }) });
    const t = await openTunnel(srv.port, echo.target, { ...CARRIERS.bearer(tok), expect: null });
    assert.match(await t.nextText(), /^ERROR:destination not allowed by token/);
  });

  it('no server log line contains a token or the secret', T, async () => {
    assertNoSecretsLogged(srv, [secret]);
  });
});

describe('no JWT configured', () => {
  let srv;
  before(async () => { srv = await startServer({ set: { log_level: 'info' } }); });
  after(async () => { await srv?.stop(); });

  it('a JWT-shaped credential is just a wrong static token: 401 without a reason', T, async () => {
    const tok = makeJwt({ key: hmacSecret(), payload: claims('nobody') });
    for (const carrier of ['bearer', 'protocol', 'query']) {
      assert401(await rawUpgrade(srv.port, tok, carrier), null, carrier);
    }
    await srv.waitForLine(/auth refused client=127\.0\.0\.1:\d+ user=- reason=invalid_token$/, 3000);
  });

  it('no server log line contains a token', T, async () => {
    assertNoSecretsLogged(srv, [DEFAULT_TOKEN]);
  });
});
