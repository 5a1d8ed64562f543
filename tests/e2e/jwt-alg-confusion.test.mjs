// JWT algorithm confusion: an HS256 token whose HMAC key is the server's RSA (or EC) *public* key
// must never verify. Each key only checks the algorithms of its own family (and curve).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import {
  genKeys, hmacSecret, makeJwt, claims, expectRefused, CARRIERS, assertNoSecretsLogged,
} from './lib/jwt.mjs';

const T = { timeout: 20000 };

async function works(srv, echo, tok) {
  const t = await openTunnel(srv.port, echo.target, CARRIERS.bearer(tok));
  await t.sendBinary(Buffer.from('ok'));
  assert.equal((await t.readBytes(2)).toString(), 'ok');
  t.close();
}

/** The public key as the attacker would find it: the PEM file bytes, variants, and the DER. */
function publicKeyForms(k) {
  const der = createPublicKey(k.pubPem).export({ type: 'spki', format: 'der' });
  return [
    ['PEM file bytes', Buffer.from(k.pubPem)],
    ['PEM without the final newline', Buffer.from(k.pubPem.trimEnd())],
    ['DER', der],
  ];
}

describe('jwt alg confusion: server has only an RSA and an EC public key (no HMAC secret)', () => {
  let srv;
  let echo;
  let keys;
  before(async () => {
    keys = genKeys();
    srv = await startServer({ set: { log_level: 'info', 'jwt.keys': `${keys.rsa.pub},${keys.ec.pub}` } });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); keys?.cleanup(); });

  it('positive control: RS256 and ES256 tokens signed with the private keys work', T, async () => {
    await works(srv, echo, makeJwt({ alg: 'RS256', key: keys.rsa.privPem, payload: claims('rs-ok') }));
    await works(srv, echo, makeJwt({ alg: 'ES256', key: keys.ec.privPem, payload: claims('es-ok') }));
  });

  it('HS256/384/512 signed with the RSA public key as HMAC secret → 401 alg_key_mismatch', T, async () => {
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      for (const [form, secret] of publicKeyForms(keys.rsa)) {
        const tok = makeJwt({ alg, key: secret, payload: claims(`confused-${alg}`) });
        await expectRefused(srv, tok, 'alg_key_mismatch', { user: '-', what: `${alg} with RSA public key (${form})` });
      }
    }
  });

  it('HS256 signed with the EC public key as HMAC secret → 401 alg_key_mismatch', T, async () => {
    for (const [form, secret] of publicKeyForms(keys.ec)) {
      const tok = makeJwt({ alg: 'HS256', key: secret, payload: claims('confused-ec') });
      await expectRefused(srv, tok, 'alg_key_mismatch', { user: '-', what: `HS256 with EC public key (${form})` });
    }
  });

  it('ES384 / ES512 for a P-256 key (curve confusion) → 401 alg_key_mismatch', T, async () => {
    for (const alg of ['ES384', 'ES512']) {
      const tok = makeJwt({ alg, key: keys.ec.privPem, signAlg: 'ES256', payload: claims('curve') });
      await expectRefused(srv, tok, 'alg_key_mismatch', { what: alg });
    }
  });

  it('the confused token is refused through every carrier', T, async () => {
    const tok = makeJwt({ alg: 'HS256', key: Buffer.from(keys.rsa.pubPem), payload: claims('confused-carriers') });
    for (const carrier of ['bearer', 'protocol', 'query']) {
      await expectRefused(srv, tok, 'alg_key_mismatch', { carrier, what: carrier });
    }
  });

  it('no server log line contains a token or key material', T, async () => {
    assert.equal(srv.exited, null);
    assertNoSecretsLogged(srv);
  });
});

describe('jwt alg confusion: server has an HMAC secret beside the RSA public key', () => {
  let srv;
  let echo;
  let keys;
  const secret = hmacSecret();
  before(async () => {
    keys = genKeys({ ec: 0 });
    srv = await startServer({ env: { ECH3_JWT_SECRET: secret }, set: { log_level: 'info', 'jwt.keys': keys.rsa.pub } });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); keys?.cleanup(); });

  it('HS256 signed with the RSA public key is checked against the secret only → 401 invalid_signature', T, async () => {
    for (const [form, k] of publicKeyForms(keys.rsa)) {
      const tok = makeJwt({ alg: 'HS256', key: k, payload: claims('confused') });
      await expectRefused(srv, tok, 'invalid_signature', { user: '-', what: form });
    }
    await works(srv, echo, makeJwt({ key: secret, payload: claims('hs-ok') }));
  });

  it('RS256 token whose "signature" is an HMAC with the secret → 401 invalid_signature', T, async () => {
    const tok = makeJwt({ alg: 'RS256', key: secret, signAlg: 'HS256', payload: claims('rs-hmac') });
    await expectRefused(srv, tok, 'invalid_signature');
  });

  it('no server log line contains a token, the secret or key material', T, async () => {
    assertNoSecretsLogged(srv, [secret]);
  });
});

describe('jwt alg confusion: the kid of an RSA key on an HS256 token', () => {
  let srv;
  let keys;
  before(async () => {
    keys = genKeys({ ec: 0 });
    srv = await startServer({ set: { log_level: 'info', 'jwt.keys': `rsa-1=${keys.rsa.pub}` } });
  });
  after(async () => { await srv?.stop(); keys?.cleanup(); });

  it('HS256 with kid "rsa-1" signed with that key\'s public PEM → 401 alg_key_mismatch', T, async () => {
    const tok = makeJwt({ alg: 'HS256', kid: 'rsa-1', key: Buffer.from(keys.rsa.pubPem), payload: claims('kid-confused') });
    await expectRefused(srv, tok, 'alg_key_mismatch', { user: '-' });
  });

  it('no server log line contains a token or key material', T, async () => {
    assertNoSecretsLogged(srv);
  });
});
