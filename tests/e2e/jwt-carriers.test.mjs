// JWT: valid HS256 / RS256 / ES256 tokens through each carrier (Authorization: Bearer,
// a Sec-WebSocket-Protocol entry offered beside another protocol, the ?token= query parameter)
// open a working tunnel, and the access log names the token's subject (user=<sub>).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import { rawRequest, upgradeRequest, acceptFor } from './lib/raw.mjs';
import {
  genKeys, hmacSecret, makeJwt, claims, CARRIERS, assertNoSecretsLogged,
} from './lib/jwt.mjs';

const T = { timeout: 20000 };

describe('jwt carriers: HS256, RS256 and ES256 through Bearer, Sec-WebSocket-Protocol and ?token=', () => {
  let srv;
  let echo;
  let keys;
  const secret = hmacSecret();
  const signKey = {};

  before(async () => {
    keys = genKeys();
    signKey.HS256 = secret;
    signKey.RS256 = keys.rsa.privPem;
    signKey.ES256 = keys.ec.privPem;
    srv = await startServer({
      env: { ECH3_JWT_SECRET: secret },
      set: { log_level: 'info', 'jwt.keys': `${keys.rsa.pub},${keys.ec.pub}` },
    });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); keys?.cleanup(); });

  for (const alg of ['HS256', 'RS256', 'ES256']) {
    for (const carrier of ['bearer', 'protocol', 'query']) {
      it(`${alg} via ${carrier}: tunnel relays bytes and the access log says user=<sub>`, T, async () => {
        const sub = `${alg.toLowerCase()}-${carrier}-user`;
        const tok = makeJwt({ alg, key: signKey[alg], payload: claims(sub) });
        const t = await openTunnel(srv.port, echo.target, CARRIERS[carrier](tok));
        const clientPort = t.ws._socket.localPort;
        if (carrier === 'protocol') {
          assert.equal(t.ws.protocol, tok, 'the 101 must echo the protocol entry that carried the JWT');
        } else {
          assert.equal(t.ws.protocol, '', 'no protocol was offered, none may be echoed');
        }
        const payload = Buffer.from(`${alg}/${carrier}: hello through the tunnel`);
        await t.sendBinary(payload);
        assert.deepEqual(await t.readBytes(payload.length), payload, 'echo came back different');
        const open = await srv.waitForLine(new RegExp(`tunnel open client=127\\.0\\.0\\.1:${clientPort} `), 3000);
        assert.match(open, new RegExp(`\\buser=${sub}\\s`), open);
        t.close();
        await t.waitClose();
        const line = await srv.waitForLine(new RegExp(`access client=127\\.0\\.0\\.1:${clientPort} `), 5000);
        assert.match(line, new RegExp(`\\buser=${sub}\\s`), `access line must name the JWT subject: ${line}`);
        assert.match(line, new RegExp(`\\bup=${payload.length}\\b`), line);
      });
    }
  }

  it('Bearer JWT with a protocol offered: the 101 echoes the first offered entry', T, async () => {
    const tok = makeJwt({ key: secret, payload: claims('bearer-with-proto') });
    const { request, key } = upgradeRequest({
      protocolHeader: 'ech3-tunnel, other-proto', extra: [`Authorization: Bearer ${tok}`],
    });
    const res = await rawRequest(srv.port, request);
    assert.equal(res.status, 101, res.raw.toString('latin1'));
    assert.equal(res.headers['sec-websocket-accept'], acceptFor(key));
    assert.equal(res.headers['sec-websocket-protocol'], 'ech3-tunnel');
  });

  it('JWT as the whole Sec-WebSocket-Protocol value (single entry) is accepted and echoed', T, async () => {
    const tok = makeJwt({ alg: 'ES256', key: keys.ec.privPem, payload: claims('whole-proto') });
    const { request } = upgradeRequest({ protocolHeader: tok });
    const res = await rawRequest(srv.port, request);
    assert.equal(res.status, 101, res.raw.toString('latin1'));
    assert.equal(res.headers['sec-websocket-protocol'], tok);
  });

  it('a long JWT (RS256, ~500 bytes) in Sec-WebSocket-Protocol: the raw 101 echoes the whole entry', T, async () => {
    const tok = makeJwt({ alg: 'RS256', key: keys.rsa.privPem, payload: claims('long-proto-entry') });
    assert.ok(tok.length > 400, `token is ${tok.length} bytes`);
    const { request } = upgradeRequest({ protocolHeader: `ech3-tunnel, ${tok}` });
    const res = await rawRequest(srv.port, request);
    assert.equal(res.status, 101, res.raw.toString('latin1'));
    assert.equal(res.headers['sec-websocket-protocol'], tok,
      `a 101 without the selected Sec-WebSocket-Protocol makes every RFC 6455 client fail the handshake (token ${tok.length} bytes); head:\n${res.raw.toString('latin1').slice(0, 300)}`);
  });

  it('JWT in the query among other parameters (percent-encoded) is found', T, async () => {
    const tok = makeJwt({ alg: 'RS256', key: keys.rsa.privPem, payload: claims('query-among-others') });
    const enc = tok.replace(/\./g, '%2E');
    const { request } = upgradeRequest({ protocolHeader: null, path: `/tunnel?x=1&token=${enc}&y=2` });
    const res = await rawRequest(srv.port, request);
    assert.equal(res.status, 101, res.raw.toString('latin1'));
  });

  it('"bearer" is matched case-insensitively in Authorization', T, async () => {
    const tok = makeJwt({ key: secret, payload: claims('lowercase-bearer') });
    const { request } = upgradeRequest({ protocolHeader: null, extra: [`Authorization: bearer ${tok}`] });
    const res = await rawRequest(srv.port, request);
    assert.equal(res.status, 101, res.raw.toString('latin1'));
  });

  it('HS384 and HS512 with the same secret are accepted too', T, async () => {
    for (const alg of ['HS384', 'HS512']) {
      const tok = makeJwt({ alg, key: secret, payload: claims(`user-${alg}`) });
      const t = await openTunnel(srv.port, echo.target, CARRIERS.bearer(tok));
      await t.sendBinary(Buffer.from('x'));
      assert.equal((await t.readBytes(1)).toString(), 'x');
      t.close();
    }
  });

  it('no server log line contains a token, the secret or key material', T, async () => {
    assert.equal(srv.exited, null, 'server exited');
    assertNoSecretsLogged(srv, [secret]);
  });
});
