// `ech3 token`: tokens minted by the binary itself (HS256 from ECH3_JWT_SECRET / a config file,
// RS256 and ES256 from --key private.pem) are accepted by a server configured with the matching
// secret / public key, carry the claims asked for, and enforce --dest.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import {
  genKeys, hmacSecret, ech3Token, decodeJwt, nowSec, CARRIERS, expectRefused, assertNoSecretsLogged,
} from './lib/jwt.mjs';

const T = { timeout: 20000 };
const ISS = 'https://mint.e2e.example';
const AUD = 'ech3-mint';

function mint(args, env) {
  const r = ech3Token(args, env);
  assert.equal(r.status, 0, `ech3 token ${args.join(' ')} failed (status ${r.status}, signal ${r.signal}):\n${r.stderr}`);
  assert.match(r.token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, `not a JWT on stdout: ${r.stdout}`);
  assert.equal(r.stdout, `${r.token}\n`, 'stdout must be exactly the token and a newline');
  return r;
}

describe('ech3 token → accepted by the server', () => {
  let srv;
  let echo;
  let keys;
  const secret = hmacSecret();
  before(async () => {
    keys = genKeys();
    srv = await startServer({
      env: { ECH3_JWT_SECRET: secret },
      set: {
        log_level: 'info',
        'jwt.keys': `rsa-main=${keys.rsa.pub},ec-main=${keys.ec.pub}`,
        'jwt.issuer': ISS,
        'jwt.audience': AUD,
      },
    });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); keys?.cleanup(); });

  async function tunnelWith(tok, sub, carrier = 'bearer') {
    const t = await openTunnel(srv.port, echo.target, CARRIERS[carrier](tok));
    const port = t.ws._socket.localPort;
    await t.sendBinary(Buffer.from('minted'));
    assert.equal((await t.readBytes(6)).toString(), 'minted');
    t.close();
    await t.waitClose();
    const line = await srv.waitForLine(new RegExp(`access client=127\\.0\\.0\\.1:${port} `), 5000);
    assert.match(line, new RegExp(`\\buser=${sub}\\s`), line);
  }

  it('HS256 with the secret from ECH3_JWT_SECRET: default claims (sub, iat, exp = now + 86400, iss/aud unset)', T, async () => {
    const { token } = mint(['--sub', 'carol'], { ECH3_JWT_SECRET: secret });
    const { header, payload } = decodeJwt(token);
    assert.equal(header.alg, 'HS256');
    assert.equal(header.kid, undefined);
    assert.equal(payload.sub, 'carol');
    assert.ok(Math.abs(payload.exp - (nowSec() + 86400)) <= 5, `exp ${payload.exp}`);
    assert.ok(Math.abs(payload.iat - nowSec()) <= 5, `iat ${payload.iat}`);
    // this server wants iss and aud: the token without them is refused...
    await expectRefused(srv, token, 'invalid_issuer', { user: 'carol' });
  });

  it('HS256 with --iss --aud --ttl: accepted through all carriers, user=<sub> in the access log', T, async () => {
    const { token } = mint(['--sub', 'carol', '--iss', ISS, '--aud', AUD, '--ttl', '600'], { ECH3_JWT_SECRET: secret });
    const { payload } = decodeJwt(token);
    assert.equal(payload.iss, ISS);
    assert.equal(payload.aud, AUD);
    assert.ok(Math.abs(payload.exp - (nowSec() + 600)) <= 5);
    for (const carrier of ['bearer', 'protocol', 'query']) await tunnelWith(token, 'carol', carrier);
  });

  it('iss and aud default to jwt.issuer / jwt.audience from the same settings as the server', T, async () => {
    const { token } = mint(['--sub', 'dave'], {
      ECH3_JWT_SECRET: secret, ECH3_JWT_ISSUER: ISS, ECH3_JWT_AUDIENCE: AUD,
    });
    assert.equal(decodeJwt(token).payload.iss, ISS);
    await tunnelWith(token, 'dave');
  });

  it('HS256 with the secret from a config file (-c) and from jwt.secret_file', T, async () => {
    const cfg = path.join(keys.dir, 'mint.cfg');
    writeFileSync(cfg, `jwt = {\n  secret = "${secret}";\n  issuer = "${ISS}";\n  audience = "${AUD}";\n};\n`);
    await tunnelWith(mint(['-c', cfg, '--sub', 'erin']).token, 'erin');
    const sf = path.join(keys.dir, 'secret.txt');
    writeFileSync(sf, `${secret}\n`);
    await tunnelWith(mint(['--sub', 'frank', '--iss', ISS, '--aud', AUD], { ECH3_JWT_SECRET_FILE: sf }).token, 'frank');
  });

  it('RS256 from --key rsa.key with --kid rsa-main: accepted (server holds the public key)', T, async () => {
    const { token } = mint(['--sub', 'grace', '--key', keys.rsa.priv, '--kid', 'rsa-main', '--iss', ISS, '--aud', AUD]);
    const { header } = decodeJwt(token);
    assert.equal(header.alg, 'RS256');
    assert.equal(header.kid, 'rsa-main');
    for (const carrier of ['bearer', 'query']) await tunnelWith(token, 'grace', carrier);
  });

  it('RS256 from --key without --kid (the server tries every RSA key): accepted', T, async () => {
    const { token } = mint(['--sub', 'heidi', '--key', keys.rsa.priv, '--iss', ISS, '--aud', AUD], {});
    assert.equal(decodeJwt(token).header.kid, undefined);
    await tunnelWith(token, 'heidi');
  });

  it('ES256 from --key ec.key (alg from the curve): accepted', T, async () => {
    const { token } = mint(['--sub', 'ivan', '--key', keys.ec.priv, '--kid', 'ec-main', '--iss', ISS, '--aud', AUD]);
    assert.equal(decodeJwt(token).header.alg, 'ES256');
    await tunnelWith(token, 'ivan', 'query');
  });

  it('RS256 with a kid the server maps to another key → 401 alg_key_mismatch', T, async () => {
    const { token } = mint(['--sub', 'judy', '--key', keys.rsa.priv, '--kid', 'ec-main', '--iss', ISS, '--aud', AUD]);
    await expectRefused(srv, token, 'alg_key_mismatch');
  });

  it('--dest limits the tunnel: the listed target works, another is refused with ERROR:', T, async () => {
    const other = await startEcho();
    try {
      const { token } = mint(['--sub', 'kim', '--iss', ISS, '--aud', AUD, '--dest', `127.0.0.1:${echo.port}`, '--dest', 'db.internal.example:5432'], { ECH3_JWT_SECRET: secret });
      assert.deepEqual(decodeJwt(token).payload.ech3_dest, [`127.0.0.1:${echo.port}`, 'db.internal.example:5432']);
      await tunnelWith(token, 'kim');
      const t = await openTunnel(srv.port, other.target, { ...CARRIERS.bearer(token), expect: null });
      assert.match(await t.nextText(), /^ERROR:destination not allowed by token/);
      assert.equal((await t.waitClose()).code, 1000);
      assert.equal(other.conns.length, 0);
    } finally {
      await other.close();
    }
  });

  it('--ttl 0 mints a token without exp, which this server (require_exp) refuses: missing_exp', T, async () => {
    const { token } = mint(['--sub', 'leo', '--ttl', '0', '--iss', ISS, '--aud', AUD], { ECH3_JWT_SECRET: secret });
    assert.equal(decodeJwt(token).payload.exp, undefined);
    await expectRefused(srv, token, 'missing_exp', { user: 'leo' });
  });

  it('a token minted with another secret → 401 invalid_signature', T, async () => {
    const { token } = mint(['--sub', 'mallory', '--iss', ISS, '--aud', AUD], { ECH3_JWT_SECRET: hmacSecret() });
    await expectRefused(srv, token, 'invalid_signature', { user: '-' });
  });

  it('errors: no secret and no --key, no --sub, a bad --dest, a short secret, an alg that does not fit the key → exit 1, nothing on stdout', T, async () => {
    const cases = [
      [['--sub', 'x'], {}],
      [[], { ECH3_JWT_SECRET: secret }],
      [['--sub', 'x', '--dest', 'no-port'], { ECH3_JWT_SECRET: secret }],
      [['--sub', 'x'], { ECH3_JWT_SECRET: 'too-short-secret' }],
      [['--sub', 'x', '--key', keys.ec.priv, '--alg', 'RS256'], {}],
      [['--sub', 'x', '--alg', 'RS256'], { ECH3_JWT_SECRET: secret }],
      [['--sub', 'x', '--key', keys.rsa.pub], {}],
      [['--sub', 'x', '--ttl', 'soon'], { ECH3_JWT_SECRET: secret }],
    ];
    for (const [args, env] of cases) {
      const r = ech3Token(args, env);
      assert.equal(r.status, 1, `ech3 token ${args.join(' ')} → status ${r.status}\n${r.stdout}${r.stderr}`);
      assert.equal(r.stdout, '', `stdout of a failed ech3 token ${args.join(' ')}: ${r.stdout}`);
      assert.match(r.stderr, /\S/, 'a failure must say why on stderr');
      assert.ok(!r.stderr.includes(secret), `the secret leaked on stderr: ${r.stderr}`);
    }
  });

  it('no server log line contains a token, the secret or key material', T, async () => {
    assertNoSecretsLogged(srv, [secret]);
  });
});
