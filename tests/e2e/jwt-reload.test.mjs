// JWT keys across a reload (SIGHUP to the master): a rotated jwt.secret in the config file applies
// to new connections at once (new-secret tokens accepted, old-secret tokens refused) while a tunnel
// opened before keeps relaying; public keys are rotated by kid without dropping tunnels; a reload
// with an unreadable key is refused and the running keys keep serving.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import {
  echoRound, waitWorkers, countLines, writeFileAtomic, sleep,
} from './lib/lifecycle.mjs';
import {
  genKeys, hmacSecret, makeJwt, claims, rawUpgrade, assert401, CARRIERS, assertNoSecretsLogged,
} from './lib/jwt.mjs';

const T = { timeout: 30000 };

/** SIGHUP, wait for the reload outcome line; returns 'reloaded' or the refusal line. */
async function hup(srv) {
  const nOk = countLines(srv, /reloaded: generation/);
  const nBad = countLines(srv, /reload refused/);
  process.kill(srv.pid, 'SIGHUP');
  const deadline = Date.now() + 5000;
  for (;;) {
    if (countLines(srv, /reloaded: generation/) > nOk) return 'reloaded';
    const bad = srv.lines.filter((l) => /reload refused/.test(l));
    if (bad.length > nBad) return bad[bad.length - 1];
    if (Date.now() > deadline) throw new Error(`no reload outcome logged within 5 s after SIGHUP\n${srv.dumpLog(20)}`);
    await sleep(20);
  }
}

/** Status of n upgrades with tok (n > workers, so that every worker answers at least once, likely). */
async function statuses(port, tok, n = 6, carrier = 'bearer') {
  const out = [];
  for (let i = 0; i < n; i++) out.push((await rawUpgrade(port, tok, carrier)).status);
  return out;
}

describe('jwt reload: rotating jwt.secret in the config file', () => {
  let srv;
  let echo;
  let keys;
  let cfg;
  const OLD = hmacSecret();
  const NEW = hmacSecret();
  const cfgText = (secret) => `# jwt-reload.test.mjs\nlog_level = "info";\ndrain_timeout = 60;\njwt = {\n  secret = "${secret}";\n};\n`;

  before(async () => {
    keys = genKeys({ rsa: 0, ec: 0 });
    cfg = path.join(keys.dir, 'ech3.cfg');
    writeFileAtomic(cfg, cfgText(OLD));
    srv = await startServer({ workers: 2, args: ['-c', cfg] });
    await waitWorkers(srv.pid, 2);
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); keys?.cleanup(); });

  it('new-secret tokens accepted, old-secret tokens refused, a tunnel opened before keeps relaying', T, async () => {
    const oldTok = makeJwt({ key: OLD, payload: claims('old-secret-user') });
    const newTok = makeJwt({ key: NEW, payload: claims('new-secret-user') });
    assert.deepEqual(await statuses(srv.port, oldTok), Array(6).fill(101), 'old-secret token before the reload');
    assert.deepEqual(await statuses(srv.port, newTok), Array(6).fill(401), 'new-secret token before the reload');
    const before = await openTunnel(srv.port, echo.target, CARRIERS.bearer(oldTok));
    assert.equal(await echoRound(before), 0);

    writeFileAtomic(cfg, cfgText(NEW));
    assert.equal(await hup(srv), 'reloaded', 'a valid config file was not reloaded');
    await waitWorkers(srv.pid, 2);

    for (const carrier of ['bearer', 'protocol', 'query']) {
      assert.deepEqual(await statuses(srv.port, newTok, 6, carrier), Array(6).fill(101), `new-secret token after the reload (${carrier})`);
      assert.deepEqual(await statuses(srv.port, oldTok, 6, carrier), Array(6).fill(401), `old-secret token after the reload (${carrier})`);
    }
    assert401(await rawUpgrade(srv.port, oldTok), 'invalid_signature', 'old-secret token after the reload');
    const fresh = await openTunnel(srv.port, echo.target, CARRIERS.bearer(newTok));
    assert.equal(await echoRound(fresh), 0, 'new-secret tunnel corrupted');
    for (let i = 0; i < 3; i++) {
      assert.equal(await echoRound(before, 4096), 0, `tunnel opened before the reload corrupted (round ${i})`);
      await sleep(100);
    }
    assert.ok(before.open, 'the reload closed a tunnel opened with the old secret');
    before.close();
    fresh.close();
  });

  it('a reload whose secret is too short is refused; the running secret keeps working', T, async () => {
    writeFileAtomic(cfg, cfgText('short-secret'));
    const outcome = await hup(srv);
    assert.notEqual(outcome, 'reloaded', 'a 12-byte jwt.secret was accepted on reload');
    assert.ok(!outcome.includes('short-secret'), `the refusal line quotes the secret: ${outcome}`);
    const tok = makeJwt({ key: NEW, payload: claims('still-new') });
    assert.deepEqual(await statuses(srv.port, tok), Array(6).fill(101));
    writeFileAtomic(cfg, cfgText(NEW));
  });

  it('no server log line contains a token or either secret', T, async () => {
    assertNoSecretsLogged(srv, [OLD, NEW, 'short-secret']);
  });
});

describe('jwt reload: rotating public keys by kid without dropping tunnels', () => {
  let srv;
  let echo;
  let keys;
  let cfg;
  const cfgText = (entries) => `log_level = "info";\ndrain_timeout = 60;\njwt = {\n  keys = [${entries.map((e) => `"${e}"`).join(', ')}];\n};\n`;

  before(async () => {
    keys = genKeys({ rsa: 2, ec: 0 });
    cfg = path.join(keys.dir, 'ech3.cfg');
    writeFileAtomic(cfg, cfgText([`k1=${keys.rsa.pub}`]));
    srv = await startServer({ workers: 2, args: ['-c', cfg] });
    await waitWorkers(srv.pid, 2);
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); keys?.cleanup(); });

  const k1 = (sub) => makeJwt({ alg: 'RS256', kid: 'k1', key: keys.rsa.privPem, payload: claims(sub) });
  const k2 = (sub) => makeJwt({ alg: 'RS256', kid: 'k2', key: keys.rsa2.privPem, payload: claims(sub) });

  it('add k2 → reload → both kids work → remove k1 → reload → k1 refused (unknown_kid); k1 tunnels keep relaying', T, async () => {
    assert.deepEqual(await statuses(srv.port, k1('a')), Array(6).fill(101));
    assert.deepEqual(await statuses(srv.port, k2('a')), Array(6).fill(401));
    const t1 = await openTunnel(srv.port, echo.target, CARRIERS.bearer(k1('k1-tunnel')));
    assert.equal(await echoRound(t1), 0);

    // step 1: add the new key beside the old one
    writeFileAtomic(cfg, cfgText([`k1=${keys.rsa.pub}`, `k2=${keys.rsa2.pub}`]));
    assert.equal(await hup(srv), 'reloaded');
    await waitWorkers(srv.pid, 2);
    assert.deepEqual(await statuses(srv.port, k1('b')), Array(6).fill(101), 'k1 after adding k2');
    assert.deepEqual(await statuses(srv.port, k2('b')), Array(6).fill(101), 'k2 after adding k2');
    const t2 = await openTunnel(srv.port, echo.target, CARRIERS.bearer(k2('k2-tunnel')));
    assert.equal(await echoRound(t1), 0, 'k1 tunnel after the first reload');

    // step 2: remove the old key
    writeFileAtomic(cfg, cfgText([`k2=${keys.rsa2.pub}`]));
    assert.equal(await hup(srv), 'reloaded');
    await waitWorkers(srv.pid, 2);
    assert.deepEqual(await statuses(srv.port, k1('c')), Array(6).fill(401), 'k1 after removing it');
    assert401(await rawUpgrade(srv.port, k1('c')), 'unknown_kid', 'k1 after removing it');
    assert.deepEqual(await statuses(srv.port, k2('c')), Array(6).fill(101), 'k2 after removing k1');

    for (const [name, t] of [['k1', t1], ['k2', t2]]) {
      assert.ok(t.open, `${name} tunnel closed by the reloads`);
      assert.equal(await echoRound(t, 8192), 0, `${name} tunnel corrupted by the reloads`);
    }
    t1.close();
    t2.close();
  });

  it('a reload naming a missing key file is refused and the running keys keep serving', T, async () => {
    writeFileAtomic(cfg, cfgText([`k2=${keys.rsa2.pub}`, `k3=${path.join(keys.dir, 'missing.pem')}`]));
    const outcome = await hup(srv);
    assert.notEqual(outcome, 'reloaded', 'a config naming a missing key file was accepted');
    assert.match(outcome, /missing\.pem/, `the refusal should name the file: ${outcome}`);
    assert.deepEqual(await statuses(srv.port, k2('d')), Array(6).fill(101));
  });

  it('a reload naming a private key (or a 1024-bit RSA key) as a public key is refused', T, async () => {
    writeFileAtomic(cfg, cfgText([`k2=${keys.rsa2.pub}`, `k4=${keys.rsa.priv}`]));
    assert.notEqual(await hup(srv), 'reloaded', 'a private key file was accepted in jwt.keys');
    const { execFileSync } = await import('node:child_process');
    const weak = path.join(keys.dir, 'weak.key');
    const weakPub = path.join(keys.dir, 'weak.pub.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', weak], { stdio: 'pipe' });
    execFileSync('openssl', ['pkey', '-in', weak, '-pubout', '-out', weakPub], { stdio: 'pipe' });
    writeFileAtomic(cfg, cfgText([`k2=${keys.rsa2.pub}`, `k5=${weakPub}`]));
    assert.notEqual(await hup(srv), 'reloaded', 'a 1024-bit RSA key was accepted');
    assert.deepEqual(await statuses(srv.port, k2('e')), Array(6).fill(101));
  });

  it('no server log line contains a token or key material', T, async () => {
    assertNoSecretsLogged(srv);
  });
});
