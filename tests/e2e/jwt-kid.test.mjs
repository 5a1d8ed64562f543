// JWT key selection by kid: two public keys with kids "key-a" and "key-b" (plus an HMAC secret
// with kid "hmac-1"). A token names its key; the wrong key for a kid, or an unknown kid, is refused.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import {
  genKeys, hmacSecret, makeJwt, claims, expectRefused, CARRIERS, assertNoSecretsLogged,
} from './lib/jwt.mjs';

const T = { timeout: 20000 };

async function works(srv, echo, tok, what) {
  const t = await openTunnel(srv.port, echo.target, CARRIERS.bearer(tok)).catch((e) => {
    throw new Error(`${what}: expected accepted, got ${e.status ?? e.message} ${e.body ?? ''}`);
  });
  await t.sendBinary(Buffer.from('kid'));
  assert.equal((await t.readBytes(3)).toString(), 'kid');
  t.close();
}

describe('jwt kid: every key has a kid', () => {
  let srv;
  let echo;
  let keys;
  const secret = hmacSecret();
  before(async () => {
    keys = genKeys({ rsa: 2, ec: 1 });
    srv = await startServer({
      env: { ECH3_JWT_SECRET: secret },
      set: {
        log_level: 'info',
        'jwt.secret_kid': 'hmac-1',
        'jwt.keys': `key-a=${keys.rsa.pub},key-b=${keys.rsa2.pub},key-ec=${keys.ec.pub}`,
      },
    });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); keys?.cleanup(); });

  it('kid key-a signed with key A → accepted; kid key-b signed with key B → accepted', T, async () => {
    await works(srv, echo, makeJwt({ alg: 'RS256', kid: 'key-a', key: keys.rsa.privPem, payload: claims('user-a') }), 'A/A');
    await works(srv, echo, makeJwt({ alg: 'RS256', kid: 'key-b', key: keys.rsa2.privPem, payload: claims('user-b') }), 'B/B');
    await works(srv, echo, makeJwt({ alg: 'ES256', kid: 'key-ec', key: keys.ec.privPem, payload: claims('user-ec') }), 'EC');
    await works(srv, echo, makeJwt({ alg: 'HS256', kid: 'hmac-1', key: secret, payload: claims('user-h') }), 'HMAC');
  });

  it('kid key-a signed with key B (and B with A) → 401 invalid_signature: the kid pins the key', T, async () => {
    await expectRefused(srv, makeJwt({ alg: 'RS256', kid: 'key-a', key: keys.rsa2.privPem, payload: claims('a-by-b') }), 'invalid_signature', { user: '-' });
    await expectRefused(srv, makeJwt({ alg: 'RS256', kid: 'key-b', key: keys.rsa.privPem, payload: claims('b-by-a') }), 'invalid_signature', { user: '-' });
  });

  it('unknown kid (and a kid that is a prefix, a case variant or very long) → 401 unknown_kid', T, async () => {
    for (const kid of ['key-c', 'key-', 'KEY-A', 'key-a ', 'x'.repeat(300), '']) {
      const tok = makeJwt({ alg: 'RS256', kid, key: keys.rsa.privPem, payload: claims('unknown-kid') });
      await expectRefused(srv, tok, 'unknown_kid', { user: '-', what: `kid ${JSON.stringify(kid.slice(0, 20))}` });
    }
  });

  it('a kid naming a key of another family → 401 alg_key_mismatch (ES256 with kid key-a, HS256 with kid key-a / key-ec)', T, async () => {
    await expectRefused(srv, makeJwt({ alg: 'ES256', kid: 'key-a', key: keys.ec.privPem, payload: claims('x') }), 'alg_key_mismatch');
    await expectRefused(srv, makeJwt({ alg: 'HS256', kid: 'key-a', key: secret, payload: claims('x') }), 'alg_key_mismatch');
    await expectRefused(srv, makeJwt({ alg: 'HS256', kid: 'key-ec', key: Buffer.from(keys.ec.pubPem), payload: claims('x') }), 'alg_key_mismatch');
    await expectRefused(srv, makeJwt({ alg: 'RS256', kid: 'hmac-1', key: keys.rsa.privPem, payload: claims('x') }), 'alg_key_mismatch');
  });

  it('no kid: every key of the family is tried (RS256 signed with A or with B is accepted)', T, async () => {
    await works(srv, echo, makeJwt({ alg: 'RS256', key: keys.rsa.privPem, payload: claims('nokid-a') }), 'no kid, key A');
    await works(srv, echo, makeJwt({ alg: 'RS256', key: keys.rsa2.privPem, payload: claims('nokid-b') }), 'no kid, key B');
    await works(srv, echo, makeJwt({ alg: 'HS256', key: secret, payload: claims('nokid-h') }), 'no kid, HMAC');
  });

  it('a kid of the wrong JSON type (number) → 401, never accepted', T, async () => {
    const { rawUpgrade } = await import('./lib/jwt.mjs');
    const tok = makeJwt({ header: { alg: 'RS256', typ: 'JWT', kid: 7 }, key: keys.rsa.privPem, payload: claims('kid-number') });
    const res = await rawUpgrade(srv.port, tok, 'bearer');
    assert.equal(res.status, 401, res.statusLine);
  });

  it('no server log line contains a token, the secret or key material', T, async () => {
    assertNoSecretsLogged(srv, [secret]);
  });
});

describe('jwt kid: a kid-less key beside a kid-bearing one', () => {
  let srv;
  let echo;
  let keys;
  before(async () => {
    keys = genKeys({ rsa: 2, ec: 0 });
    srv = await startServer({ set: { log_level: 'info', 'jwt.keys': `key-a=${keys.rsa.pub},${keys.rsa2.pub}` } });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); keys?.cleanup(); });

  it('an unknown kid falls back to the kid-less key (signed by it → accepted; by key A → invalid_signature)', T, async () => {
    await works(srv, echo, makeJwt({ alg: 'RS256', kid: 'whatever', key: keys.rsa2.privPem, payload: claims('fallback') }), 'unknown kid, kid-less key');
    await expectRefused(srv, makeJwt({ alg: 'RS256', kid: 'whatever', key: keys.rsa.privPem, payload: claims('fallback-a') }), 'invalid_signature');
  });

  it('kid key-a is still pinned to key A (signed by the kid-less key → invalid_signature)', T, async () => {
    await expectRefused(srv, makeJwt({ alg: 'RS256', kid: 'key-a', key: keys.rsa2.privPem, payload: claims('pinned') }), 'invalid_signature');
    await works(srv, echo, makeJwt({ alg: 'RS256', kid: 'key-a', key: keys.rsa.privPem, payload: claims('pinned-ok') }), 'kid A');
  });

  it('no server log line contains a token or key material', T, async () => {
    assertNoSecretsLogged(srv);
  });
});
