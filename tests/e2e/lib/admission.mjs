// Helpers for the admission-control tests (tests/e2e/admission-*.test.mjs): tunnel attempts that
// report 101-or-refusal instead of throwing, /metrics reads, refusal log lines, HS256 tokens.

import { createHmac, randomBytes } from 'node:crypto';
import { openTunnel } from './client.mjs';
import { rawRequest } from './raw.mjs';
import { sleep, recordSecret } from './server.mjs';

export { sleep };

export const METRICS_TOKEN = 'e2e-metrics-token';

export const BODY_CONN = { error: 'too many connections' };
export const BODY_RATE = { error: 'too many new connections' };

/**
 * Try to open a tunnel (WebSocket + CONNECT + "CONNECTED").
 * Resolves { ok: true, tunnel, localPort, ms } or { ok: false, status, headers, body, json, error, ms }
 * (status null when the failure was not an HTTP answer, e.g. a timeout or a reset).
 * opts: { localAddress, headers, token, timeout } (token as for openWs: Sec-WebSocket-Protocol).
 */
export async function attempt(port, target, { localAddress, headers, token, timeout = 8000 } = {}) {
  const started = Date.now();
  const wsOptions = {};
  if (localAddress) wsOptions.localAddress = localAddress;
  if (headers) wsOptions.headers = headers;
  const opts = { timeout, replyTimeout: timeout, wsOptions };
  if (token !== undefined) opts.token = token;
  try {
    const tunnel = await openTunnel(port, target, opts);
    const sock = tunnel.ws._socket;
    return { ok: true, tunnel, localPort: sock?.localPort, localAddress: sock?.localAddress, ms: Date.now() - started };
  } catch (e) {
    let json = null;
    try { json = e.body ? JSON.parse(e.body) : null; } catch { /* not JSON */ }
    return {
      ok: false, status: e.status ?? null, headers: e.headers ?? {}, body: e.body ?? '', json, error: e.message, ms: Date.now() - started,
    };
  }
}

/** Run attempts concurrently; resolves the results in order. */
export function attemptMany(n, fn) {
  return Promise.all(Array.from({ length: n }, (_, i) => fn(i)));
}

/** Short summary of a list of attempt results: "101 x50, 429 x30". */
export function tally(results) {
  const m = new Map();
  for (const r of results) {
    const k = r.ok ? '101' : String(r.status ?? `error(${r.error})`);
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return [...m.entries()].map(([k, v]) => `${k} x${v}`).join(', ');
}

/** Check that a failed attempt is a proper 429 (or status) refusal; returns a list of problems (empty: fine). */
export function refusalProblems(r, { status = 429, body = BODY_CONN, minRetry = 1 } = {}) {
  const p = [];
  if (r.ok) return ['admitted (101), expected a refusal'];
  if (r.status !== status) p.push(`status ${r.status} (${r.error}), expected ${status}`);
  const ra = r.headers['retry-after'];
  if (ra === undefined) p.push('no Retry-After header');
  else if (!/^\d+$/.test(ra) || Number(ra) < minRetry) p.push(`Retry-After ${JSON.stringify(ra)}, expected an integer >= ${minRetry}`);
  if (!/^application\/json\b/.test(r.headers['content-type'] ?? '')) p.push(`Content-Type ${JSON.stringify(r.headers['content-type'])}, expected application/json`);
  if (JSON.stringify(r.json) !== JSON.stringify(body)) p.push(`body ${JSON.stringify(r.body)}, expected ${JSON.stringify(body)}`);
  return p;
}

/** GET /metrics on the main listener with the bearer token; resolves the text. */
export async function metricsText(port, token = METRICS_TOKEN) {
  const req = `GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`;
  const res = await rawRequest(port, req, { timeout: 3000 });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${res.raw.toString('latin1').slice(0, 200)}`);
  return res.body;
}

/** A metric's value (first sample whose name+labels start with `name`), or null. */
export function metricValue(text, name) {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    if (i > 0 && line.slice(0, i) === name) return Number(line.slice(i + 1));
  }
  return null;
}

export async function tunnelsOpen(port, token = METRICS_TOKEN) {
  return metricValue(await metricsText(port, token), 'ech3_tunnels_open');
}

/** Poll ech3_tunnels_open until it equals n; resolves the value; throws after timeout with the last value. */
export async function waitTunnelsOpen(port, n, { timeout = 5000, token = METRICS_TOKEN } = {}) {
  const deadline = Date.now() + timeout;
  let last = null;
  for (;;) {
    try { last = await tunnelsOpen(port, token); } catch (e) { last = `error: ${e.message}`; }
    if (last === n) return last;
    if (Date.now() > deadline) throw new Error(`ech3_tunnels_open is ${last}, expected ${n} within ${timeout} ms`);
    await sleep(50);
  }
}

/** `admission refused` log lines, optionally only those naming `limit`. */
export function refusalLines(srv, limit) {
  return srv.lines.filter((l) => /admission refused /.test(l) && (limit === undefined || new RegExp(`\\blimit=${limit}\\b`).test(l)));
}

/** Close every open tunnel of a list of attempt results (best effort). */
export function closeAll(results) {
  for (const r of results) if (r?.ok) r.tunnel.terminate();
}

/** Close tunnels the polite way (CLOSE command) and wait for the close, bounded. */
export async function closeTunnels(tunnels, ms = 5000) {
  await Promise.all(tunnels.map(async (t) => {
    try { await t.sendText('CLOSE'); } catch { /* already gone */ }
    try { await t.waitClose(ms); } catch { t.terminate(); }
  }));
}

const b64url = (b) => Buffer.from(b).toString('base64url');

/** A random HS256 secret as hex (64 hex characters = 32 bytes of entropy, 64 bytes as a string). */
export function randomSecret() {
  return recordSecret(randomBytes(32).toString('hex'));
}

/** Mint an HS256 JWT by hand: { sub, exp: now + ttl, iat: now } plus extra claims. */
export function mintHS256(secret, sub, { ttl = 3600, extra = {} } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub, iat: now, exp: now + ttl, ...extra }));
  const sig = createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${head}.${body}`).digest('base64url');
  return recordSecret(`${head}.${body}.${sig}`); // tests/check-logs.mjs: never in a server log
}
