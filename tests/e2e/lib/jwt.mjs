// JWT helpers for the jwt-*.test.mjs end-to-end tests.
//
// Tokens are built by hand with node's crypto (no JWT library), so a test can produce exactly the
// malformed / malicious token it wants: any header, any payload, any signature. Keys are generated
// at test time with `openssl genpkey` into a private temp dir. Every token and secret a test
// creates is remembered (`secrets`) so the test can assert that none of them ever reaches the
// server's log.

import {
  createHmac, createSign, sign as cryptoSign, randomBytes,
} from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import * as serverLib from './server.mjs';
import { openWs } from './client.mjs';
import { rawRequest, upgradeRequest } from './raw.mjs';

/** Every token / secret / private key this test process made; none may appear in a server log. */
export const secrets = new Set();
export function remember(s) {
  if (typeof s === 'string' && s.length >= 8) {
    secrets.add(s);
    // also into the suite-wide list that tests/check-logs.mjs checks every server log against
    // (when this harness version has it)
    // (a huge token only by its signature: secrets.txt need not hold a 1 MiB line)
    if (typeof serverLib.recordSecret === 'function') {
      serverLib.recordSecret(s.length <= 16384 ? s : s.slice(s.lastIndexOf('.') + 1));
    }
  }
  return s;
}

export const b64u = (buf) => Buffer.from(buf).toString('base64url');
const seg = (part) => b64u(Buffer.isBuffer(part) ? part
  : Buffer.from(typeof part === 'string' ? part : JSON.stringify(part), 'utf8'));
export const nowSec = () => Math.floor(Date.now() / 1000);

/** A random HMAC secret (printable, 64 hex chars = 32 random bytes). */
export function hmacSecret() {
  return remember(randomBytes(32).toString('hex'));
}

/**
 * Sign `input` (the "header.payload" string) with `alg` and `key`:
 * HS*: key is the secret (string or Buffer); RS*: private PEM; ES*: private PEM (IEEE P1363 r||s).
 */
export function signWith(alg, key, input) {
  const bits = alg.slice(2);
  const hash = `sha${bits}`;
  if (alg.startsWith('HS')) return createHmac(hash, key).update(input).digest();
  if (alg.startsWith('RS')) return createSign(hash.toUpperCase()).update(input).sign(key);
  if (alg.startsWith('ES')) return cryptoSign(hash, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  throw new Error(`signWith: no signer for alg ${alg}`);
}

/**
 * Build a JWT.
 * header: object (alg/typ filled in unless given) or raw string/Buffer for the header segment;
 * payload: object or raw string/Buffer; key: signing key (see signWith);
 * signAlg: algorithm actually used to sign (default header.alg); signature: raw Buffer overriding
 * the computed one ('' for an empty third segment).
 */
export function makeJwt({
  alg = 'HS256', kid, header, payload = {}, key, signAlg, signature,
} = {}) {
  let h = header;
  if (h === undefined || (typeof h === 'object' && !Buffer.isBuffer(h))) {
    h = { alg, typ: 'JWT', ...(kid !== undefined ? { kid } : {}), ...(h ?? {}) };
  }
  const input = `${seg(h)}.${seg(payload)}`;
  let sig;
  if (signature !== undefined) sig = signature;
  else sig = signWith(signAlg ?? (typeof h === 'object' && !Buffer.isBuffer(h) ? h.alg : alg), key, input);
  return remember(`${input}.${b64u(sig)}`);
}

/** Standard claims valid for an hour, plus `extra`. */
export function claims(sub, extra = {}) {
  const t = nowSec();
  return { sub, iat: t, exp: t + 3600, ...extra };
}

/**
 * Generate keys with openssl into a fresh temp dir:
 * { dir, rsa: {priv, pub, privPem, pubPem}, rsa2, ec: {...}, ec2, cleanup() }.
 */
export function genKeys({ rsa = 1, ec = 1 } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ech3-jwt-'));
  const gen = (name, args) => {
    const priv = path.join(dir, `${name}.key`);
    const pub = path.join(dir, `${name}.pub.pem`);
    execFileSync('openssl', ['genpkey', ...args, '-out', priv], { stdio: 'pipe' });
    execFileSync('openssl', ['pkey', '-in', priv, '-pubout', '-out', pub], { stdio: 'pipe' });
    const k = { priv, pub, privPem: readFileSync(priv, 'utf8'), pubPem: readFileSync(pub, 'utf8') };
    remember(k.privPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '').slice(0, 64));
    if (typeof serverLib.recordSecret === 'function') serverLib.recordSecret(k.privPem); // every base64 line
    return k;
  };
  const keys = { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  for (let i = 0; i < rsa; i++) keys[i ? `rsa${i + 1}` : 'rsa'] = gen(`rsa${i + 1}`, ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']);
  for (let i = 0; i < ec; i++) keys[i ? `ec${i + 1}` : 'ec'] = gen(`ec${i + 1}`, ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  return keys;
}

/** Environment for a child `ech3 token`: no inherited ECH3_* / TOKEN, plus `env`. */
function cleanEnv(env = {}) {
  const e = { ...process.env };
  for (const k of Object.keys(e)) if (k.startsWith('ECH3_') || k === 'TOKEN') delete e[k];
  return { ...e, ...env };
}

/** Run `ech3 token ARGS` ; returns { status, stdout, stderr, token }. */
export function ech3Token(args, env = {}) {
  const r = spawnSync(serverLib.ECH3_BIN, ['token', ...args], { env: cleanEnv(env), encoding: 'utf8', timeout: 10000 });
  const token = r.stdout.trim();
  if (token) remember(token);
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, token };
}

/** Decode a JWT's header and payload (no verification). */
export function decodeJwt(tok) {
  const [h, p] = tok.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')),
  };
}

/** The three carriers: how to hand `tok` to openWs / openTunnel. */
export const CARRIERS = {
  bearer: (tok) => ({ token: null, wsOptions: { headers: { Authorization: `Bearer ${tok}` } } }),
  protocol: (tok) => ({ protocols: ['ech3-tunnel', tok] }),
  query: (tok) => ({ token: null, path: `/?token=${encodeURIComponent(tok)}` }),
};

/** Raw upgrade request carrying `tok` in `carrier`; returns the parsed answer of rawRequest. */
export function rawUpgrade(port, tok, carrier = 'bearer', opts = {}) {
  let req;
  if (carrier === 'bearer') req = upgradeRequest({ protocolHeader: null, extra: [`Authorization: Bearer ${tok}`] });
  else if (carrier === 'protocol') req = upgradeRequest({ protocolHeader: `ech3-tunnel, ${tok}` });
  else if (carrier === 'query') req = upgradeRequest({ protocolHeader: null, path: `/?token=${tok}` });
  else throw new Error(`unknown carrier ${carrier}`);
  return rawRequest(port, req.request, { timeout: 5000, ...opts });
}

/** Assert a 401 with the JSON body {"error":"unauthorized","reason":reason} (reason null: no reason). */
export function assert401(res, reason, what = '') {
  const ctx = `${what ? `${what}: ` : ''}expected 401 reason=${reason}, got ${res.statusLine ?? '(no answer)'}\n${res.raw.toString('latin1').slice(0, 400)}`;
  assert.equal(res.status, 401, ctx);
  assert.match(res.headers['content-type'] ?? '', /^application\/json/i, `${ctx}\n(Content-Type)`);
  let body;
  try { body = JSON.parse(res.body); } catch { assert.fail(`${ctx}\n(body is not JSON)`); }
  assert.deepEqual(body, reason == null ? { error: 'unauthorized' } : { error: 'unauthorized', reason }, ctx);
}

/** Expect a refused upgrade with `reason` through `carrier`, and the matching log line. */
export async function expectRefused(srv, tok, reason, { carrier = 'bearer', user = null, what = '' } = {}) {
  const re = new RegExp(`auth refused client=127\\.0\\.0\\.1:\\d+ user=\\S+ reason=${reason}$`);
  const before = srv.lines.filter((l) => re.test(l)).length;
  const res = await rawUpgrade(srv.port, tok, carrier);
  assert401(res, reason, what);
  const lines = await srv.waitForLines(re, before + 1, 3000);
  const line = lines[lines.length - 1];
  if (user !== null) assert.match(line, new RegExp(`\\buser=${user.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s`), `${what}: ${line}`);
  return res;
}

/** Upgrade with `tok` through `carrier` and expect 101 (returns the open Tunnel). */
export function openWithJwt(port, tok, carrier = 'bearer', extra = {}) {
  return openWs(port, { ...CARRIERS[carrier](tok), ...extra });
}

/** No server output line holds any token, secret or key text made by this process. */
export function assertNoSecretsLogged(srv, extra = []) {
  const all = [...secrets, ...extra.filter((s) => typeof s === 'string' && s.length >= 8)];
  for (const l of srv.lines) {
    for (const s of all) {
      // also look for the signature segment alone, and the payload segment of a token
      const parts = s.split('.');
      const needles = [s];
      if (parts.length === 3) { if (parts[2].length >= 16) needles.push(parts[2]); needles.push(parts[1]); }
      for (const n of needles) {
        if (n.length >= 8 && l.includes(n)) {
          assert.fail(`server log line leaks a token/secret (${n.slice(0, 20)}...):\n${l.slice(0, 300)}`);
        }
      }
    }
  }
}
