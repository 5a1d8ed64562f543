// JWT refusals: every failed check answers 401 {"error":"unauthorized","reason":"<reason>"}, logs
// `auth refused client=IP:PORT user=<sub or -> reason=<reason>`, and a bad JWT is refused through
// every carrier. Covers expired / not-yet-valid (and the leeway), missing exp, wrong issuer and
// audience, bad signatures, a tampered payload, alg "none", bad claim types, bad headers.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import {
  genKeys, hmacSecret, makeJwt, claims, nowSec, b64u, rawUpgrade, assert401, expectRefused,
  CARRIERS, assertNoSecretsLogged, remember,
} from './lib/jwt.mjs';

const T = { timeout: 20000 };
const ISS = 'https://issuer.e2e.example';
const AUD = 'ech3-e2e';

describe('jwt refusals: claims, signatures and headers', () => {
  let srv;
  let echo;
  let keys;
  const secret = hmacSecret();
  const other = hmacSecret();
  const good = (sub, extra = {}) => claims(sub, { iss: ISS, aud: AUD, ...extra });
  const hs = (payload, opts = {}) => makeJwt({ key: secret, payload, ...opts });

  before(async () => {
    keys = genKeys({ rsa: 2, ec: 2 });
    srv = await startServer({
      env: { ECH3_JWT_SECRET: secret },
      set: {
        log_level: 'info',
        'jwt.keys': `${keys.rsa.pub},${keys.ec.pub}`,
        'jwt.issuer': ISS,
        'jwt.audience': AUD,
      },
    });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); keys?.cleanup(); });

  async function accepted(tok, what) {
    const t = await openTunnel(srv.port, echo.target, CARRIERS.bearer(tok)).catch((e) => {
      throw new Error(`${what}: expected the token to be accepted, got ${e.status ?? e.message} ${e.body ?? ''}`);
    });
    await t.sendBinary(Buffer.from('ok'));
    assert.equal((await t.readBytes(2)).toString(), 'ok');
    t.close();
  }

  it('positive control: a token with the right iss/aud/exp is accepted', T, async () => {
    await accepted(hs(good('control')), 'control');
  });

  it('expired (exp 120 s ago, leeway 30 s) → 401 expired, logged with the subject', T, async () => {
    const t = nowSec();
    const tok = hs(good('expired-user', { iat: t - 3600, exp: t - 120 }));
    for (const carrier of ['bearer', 'protocol', 'query']) {
      const res = await rawUpgrade(srv.port, tok, carrier);
      assert401(res, 'expired', `expired via ${carrier}`);
    }
    const line = await srv.waitForLine(/auth refused .*reason=expired/, 3000);
    assert.match(line, /auth refused client=127\.0\.0\.1:\d+ user=expired-user reason=expired$/, line);
  });

  it('exp 10 s ago is still inside the 30 s leeway → accepted', T, async () => {
    await accepted(hs(good('within-leeway', { exp: nowSec() - 10 })), 'exp within leeway');
  });

  it('not yet valid (nbf 300 s ahead) → 401 not_yet_valid; nbf 10 s ahead (inside leeway) → accepted', T, async () => {
    await expectRefused(srv, hs(good('early-user', { nbf: nowSec() + 300 })), 'not_yet_valid', { user: 'early-user' });
    await accepted(hs(good('early-but-ok', { nbf: nowSec() + 10 })), 'nbf within leeway');
  });

  it('no exp while jwt.require_exp=true (default) → 401 missing_exp', T, async () => {
    const p = good('no-exp');
    delete p.exp;
    await expectRefused(srv, hs(p), 'missing_exp', { user: 'no-exp' });
  });

  it('wrong issuer, and missing issuer → 401 invalid_issuer', T, async () => {
    await expectRefused(srv, hs(good('wrong-iss', { iss: 'https://evil.example' })), 'invalid_issuer', { user: 'wrong-iss' });
    const p = good('no-iss');
    delete p.iss;
    await expectRefused(srv, hs(p), 'invalid_issuer');
    // a prefix or a case variant is not the issuer
    await expectRefused(srv, hs(good('iss-prefix', { iss: `${ISS}/x` })), 'invalid_issuer');
    await expectRefused(srv, hs(good('iss-case', { iss: ISS.toUpperCase() })), 'invalid_issuer');
  });

  it('wrong audience, missing audience, array without ours → 401 invalid_audience; array with ours → accepted', T, async () => {
    await expectRefused(srv, hs(good('wrong-aud', { aud: 'someone-else' })), 'invalid_audience', { user: 'wrong-aud' });
    const p = good('no-aud');
    delete p.aud;
    await expectRefused(srv, hs(p), 'invalid_audience');
    await expectRefused(srv, hs(good('aud-array-no', { aud: ['a', 'b'] })), 'invalid_audience');
    await expectRefused(srv, hs(good('aud-object', { aud: { aud: AUD } })), 'invalid_audience');
    await accepted(hs(good('aud-array-yes', { aud: ['other', AUD] })), 'aud array containing ours');
  });

  it('bad signature: HS256 with another secret, RS256/ES256 with another key → 401 invalid_signature, user=-', T, async () => {
    await expectRefused(srv, makeJwt({ key: other, payload: good('forger-hs') }), 'invalid_signature', { user: '-' });
    await expectRefused(srv, makeJwt({ alg: 'RS256', key: keys.rsa2.privPem, payload: good('forger-rs') }), 'invalid_signature', { user: '-' });
    await expectRefused(srv, makeJwt({ alg: 'ES256', key: keys.ec2.privPem, payload: good('forger-es') }), 'invalid_signature', { user: '-' });
    // the sub of a forged token never reaches the log
    assert.ok(!srv.lines.some((l) => /forger-/.test(l)), 'the subject of an unverified token was logged');
  });

  it('signature bytes flipped / truncated / empty → 401 invalid_signature', T, async () => {
    const tok = hs(good('flip'));
    const [h, p, s] = tok.split('.');
    const sig = Buffer.from(s, 'base64url');
    sig[0] ^= 1;
    await expectRefused(srv, remember(`${h}.${p}.${b64u(sig)}`), 'invalid_signature');
    await expectRefused(srv, remember(`${h}.${p}.${b64u(sig.subarray(0, 16))}`), 'invalid_signature');
    // an empty signature with a real alg: still just a bad signature
    const res = await rawUpgrade(srv.port, `${h}.${p}.`, 'bearer');
    assert401(res, 'invalid_signature', 'empty signature');
  });

  it('ES256 signature in DER form instead of JOSE r||s → 401 invalid_signature', T, async () => {
    const { sign } = await import('node:crypto');
    const tok = makeJwt({ alg: 'ES256', key: keys.ec.privPem, payload: good('der-sig') });
    const [h, p] = tok.split('.');
    const der = sign('sha256', Buffer.from(`${h}.${p}`), { key: keys.ec.privPem, dsaEncoding: 'der' });
    await expectRefused(srv, remember(`${h}.${p}.${b64u(der)}`), 'invalid_signature');
  });

  it('tampered payload (sub and exp changed, original signature kept) → 401 invalid_signature, user=-', T, async () => {
    for (const [alg, key] of [['HS256', secret], ['RS256', keys.rsa.privPem], ['ES256', keys.ec.privPem]]) {
      const tok = makeJwt({ alg, key, payload: good(`victim-${alg}`, { ech3_dest: ['127.0.0.1:1'] }) });
      const [h, , s] = tok.split('.');
      const evil = b64u(JSON.stringify(good('admin', { exp: nowSec() + 10 * 365 * 86400 })));
      await expectRefused(srv, remember(`${h}.${evil}.${s}`), 'invalid_signature', { user: '-', what: `tampered ${alg}` });
    }
    assert.ok(!srv.lines.some((l) => /user=admin\b/.test(l)), 'the tampered subject was logged');
  });

  it('alg "none" (and None/NONE, with or without a signature) → 401 unsupported_alg', T, async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const base = makeJwt({ header: { alg, typ: 'JWT' }, payload: good(`none-${alg}`), signature: Buffer.alloc(0) });
      assert.ok(base.endsWith('.'), base);
      for (const carrier of ['bearer', 'protocol', 'query']) {
        const res = await rawUpgrade(srv.port, base, carrier);
        assert401(res, 'unsupported_alg', `alg ${alg} via ${carrier}`);
      }
      // with an HMAC signature attached anyway
      const signed = makeJwt({ header: { alg, typ: 'JWT' }, payload: good(`none2-${alg}`), key: secret, signAlg: 'HS256' });
      await expectRefused(srv, signed, 'unsupported_alg');
    }
  });

  it('other unsupported algs (hs256, PS256, EdDSA, missing alg, alg not a string) → 401 unsupported_alg', T, async () => {
    for (const header of [{ alg: 'hs256' }, { alg: 'PS256' }, { alg: 'EdDSA' }, '{"typ":"JWT"}', { alg: ['HS256'] }, { alg: 256 }]) {
      const tok = makeJwt({ header, payload: good('weird-alg'), key: secret, signAlg: 'HS256' });
      const res = await rawUpgrade(srv.port, tok, 'bearer');
      assert401(res, 'unsupported_alg', JSON.stringify(header));
    }
  });

  it('bad headers: typ other than JWT, crit, duplicate alg → 401 malformed', T, async () => {
    for (const header of [
      { alg: 'HS256', typ: 'JOSE+JSON' },
      { alg: 'HS256', crit: ['exp'], exp: 1 },
      '{"alg":"none","alg":"HS256"}',
      '{"alg":"HS256","alg":"HS256"}',
    ]) {
      const tok = makeJwt({ header, payload: good('bad-header'), key: secret, signAlg: 'HS256' });
      const res = await rawUpgrade(srv.port, tok, 'bearer');
      assert401(res, 'malformed', JSON.stringify(header));
    }
  });

  it('duplicate claims (two exp, two sub) → 401 malformed, whatever the signature', T, async () => {
    const t = nowSec();
    for (const body of [
      `{"sub":"dup","iss":"${ISS}","aud":"${AUD}","exp":${t - 1000},"exp":${t + 3600}}`,
      `{"sub":"dup","sub":"admin","iss":"${ISS}","aud":"${AUD}","exp":${t + 3600}}`,
    ]) {
      const res = await rawUpgrade(srv.port, hs(body), 'bearer');
      assert401(res, 'malformed', body);
    }
  });

  it('claims of the wrong type (exp as a string, sub as a number, ech3_dest not a list) → 401 invalid_claims', T, async () => {
    for (const extra of [{ exp: `${nowSec() + 3600}` }, { sub: 42 }, { ech3_dest: '127.0.0.1:80' }, { ech3_dest: ['no-port'] }, { nbf: 'yesterday' }]) {
      const res = await rawUpgrade(srv.port, hs(good('typed', extra)), 'bearer');
      assert401(res, 'invalid_claims', JSON.stringify(extra));
    }
  });

  it('a bad JWT is refused through every carrier; the log line has client, user and reason and no token', T, async () => {
    const tok = makeJwt({ key: other, payload: good('every-carrier') });
    for (const carrier of ['bearer', 'protocol', 'query']) {
      const res = await rawUpgrade(srv.port, tok, carrier);
      assert401(res, 'invalid_signature', carrier);
    }
    const lines = await srv.waitForLines(/auth refused client=127\.0\.0\.1:\d+ user=- reason=invalid_signature$/, 3, 3000);
    assert.ok(lines.length >= 3);
  });

  it('a subject with control characters cannot forge log lines', T, async () => {
    const tok = hs(good('mallory\nech3[1]: forged line\r\x1b[31m', { exp: nowSec() - 3600 }));
    const res = await rawUpgrade(srv.port, tok, 'bearer');
    assert401(res, 'expired');
    const line = await srv.waitForLine(/user=mallory/, 3000);
    assert.ok(!srv.lines.some((l) => /^ech3\[1\]: forged line/.test(l) || l.includes('\x1b')), `a control character reached the log:\n${line}`);
  });

  it('the server is still serving, and no log line contains a token, the secrets or key material', T, async () => {
    assert.equal(srv.exited, null, `server exited:\n${srv.dumpLog()}`);
    await accepted(hs(good('after-all')), 'after the refusals');
    assertNoSecretsLogged(srv, [secret, other]);
  });
});
