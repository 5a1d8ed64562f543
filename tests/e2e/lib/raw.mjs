// Raw TCP client for hand-made HTTP requests.

import net from 'node:net';
import { randomBytes, createHash } from 'node:crypto';
import { DEFAULT_TOKEN } from './server.mjs';

export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function acceptFor(key) {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

/** Parse an HTTP response head from a buffer; null if the head is incomplete. */
export function parseHead(buf) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = buf.subarray(0, end).toString('latin1');
  const [statusLine, ...hl] = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
  const headers = {};
  for (const l of hl) {
    const i = l.indexOf(':');
    if (i < 0) continue;
    const k = l.slice(0, i).trim().toLowerCase();
    const v = l.slice(i + 1).trim();
    headers[k] = headers[k] !== undefined ? `${headers[k]}, ${v}` : v;
  }
  return { status: m ? Number(m[1]) : NaN, statusLine, headers, headLength: end + 4 };
}

/**
 * Send `request` (string latin1 or Buffer, or array of pieces sent with `gapMs` between them) and
 * collect the answer until: the server closes, the response (head + Content-Length body) is
 * complete (`untilComplete`), or `timeout`. Returns
 * { raw, status, headers, body, closed, timedOut, error, elapsedMs, socket? }.
 */
export function rawRequest(port, request, {
  host = '127.0.0.1', timeout = 5000, untilComplete = true, keepOpen = false, gapMs = 0,
} = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const chunks = [];
    let done = false;
    let closed = false;
    let error = null;
    const sock = net.connect({ port, host });
    const finish = (timedOut) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      const head = parseHead(raw);
      const res = {
        raw,
        status: head ? head.status : null,
        statusLine: head ? head.statusLine : null,
        headers: head ? head.headers : {},
        body: head ? raw.subarray(head.headLength).toString('utf8') : '',
        closed,
        timedOut,
        error,
        elapsedMs: Date.now() - started,
      };
      if (keepOpen && !closed) res.socket = sock; else sock.destroy();
      resolve(res);
    };
    const timer = setTimeout(() => finish(true), timeout);
    sock.on('data', (d) => {
      chunks.push(d);
      if (!untilComplete) return;
      const raw = Buffer.concat(chunks);
      const head = parseHead(raw);
      if (!head) return;
      if (head.status === 101) { finish(false); return; }
      const cl = head.headers['content-length'];
      if (cl !== undefined && raw.length - head.headLength >= Number(cl)) finish(false);
    });
    sock.on('end', () => { closed = true; finish(false); });
    sock.on('close', () => { closed = true; finish(false); });
    sock.on('error', (e) => { error = e; });
    sock.on('connect', async () => {
      const pieces = Array.isArray(request) ? request : [request];
      for (let i = 0; i < pieces.length; i++) {
        if (done) return;
        const p = pieces[i];
        sock.write(Buffer.isBuffer(p) ? p : Buffer.from(p, 'latin1'));
        if (gapMs && i < pieces.length - 1) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

/** Build a WebSocket upgrade request. extra: array of raw header lines; omit: header names to leave out. */
export function upgradeRequest({
  path = '/', host = '127.0.0.1:1234', token = DEFAULT_TOKEN, protocolHeader, version = '13',
  key = randomBytes(16).toString('base64'), extra = [], omit = [],
} = {}) {
  const lines = [`GET ${path} HTTP/1.1`];
  const add = (name, value) => { if (!omit.includes(name.toLowerCase())) lines.push(`${name}: ${value}`); };
  add('Host', host);
  add('Upgrade', 'websocket');
  add('Connection', 'Upgrade');
  add('Sec-WebSocket-Key', key);
  add('Sec-WebSocket-Version', version);
  const proto = protocolHeader !== undefined ? protocolHeader : token;
  if (proto != null) add('Sec-WebSocket-Protocol', proto);
  add('User-Agent', 'Go-http-client/1.1');
  lines.push(...extra);
  return { request: lines.join('\r\n') + '\r\n\r\n', key };
}

/** Wait until a socket is closed by the peer; resolves elapsed ms, or null on timeout. */
export function waitSocketClosed(sock, timeout) {
  const started = Date.now();
  return new Promise((resolve) => {
    if (sock.destroyed) { resolve(0); return; }
    const t = setTimeout(() => resolve(null), timeout);
    const fin = () => { clearTimeout(t); resolve(Date.now() - started); };
    sock.once('end', fin);
    sock.once('close', fin);
    sock.resume();
  });
}

/** Build one masked client WebSocket frame. op: 1 text, 2 binary, 0 continuation, 8 close, 9 ping, 10 pong. */
export function wsFrame(op, payload = Buffer.alloc(0), { fin = true, mask = randomBytes(4) } = {}) {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'latin1');
  let hdr;
  if (p.length < 126) {
    hdr = Buffer.from([(fin ? 0x80 : 0) | op, 0x80 | p.length]);
  } else if (p.length < 65536) {
    hdr = Buffer.alloc(4);
    hdr[0] = (fin ? 0x80 : 0) | op; hdr[1] = 0x80 | 126; hdr.writeUInt16BE(p.length, 2);
  } else {
    hdr = Buffer.alloc(10);
    hdr[0] = (fin ? 0x80 : 0) | op; hdr[1] = 0x80 | 127; hdr.writeBigUInt64BE(BigInt(p.length), 2);
  }
  const m = Buffer.alloc(p.length);
  for (let i = 0; i < p.length; i++) m[i] = p[i] ^ mask[i % 4];
  return Buffer.concat([hdr, mask, m]);
}

/** Parse unmasked server frames from buf; returns {frames:[{fin, op, payload}], rest}. */
export function parseFrames(buf) {
  const frames = [];
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    const b0 = buf[off]; const b1 = buf[off + 1];
    let len = b1 & 0x7f; let hl = 2;
    if (len === 126) { if (buf.length - off < 4) break; len = buf.readUInt16BE(off + 2); hl = 4; }
    else if (len === 127) { if (buf.length - off < 10) break; len = Number(buf.readBigUInt64BE(off + 2)); hl = 10; }
    if (b1 & 0x80) hl += 4; // masked (should not happen from a server)
    if (buf.length - off < hl + len) break;
    frames.push({ fin: !!(b0 & 0x80), op: b0 & 0x0f, payload: buf.subarray(off + hl, off + hl + len) });
    off += hl + len;
  }
  return { frames, rest: buf.subarray(off) };
}

/**
 * A hand-driven WebSocket client on a raw socket: upgrade, then write exactly the bytes you want
 * (e.g. several frames in one TCP write). Collects server frames in `frames`.
 */
export async function rawWs(port, { token = DEFAULT_TOKEN, host = '127.0.0.1' } = {}) {
  const res = await rawRequest(port, upgradeRequest({ token }).request, { keepOpen: true, host });
  if (res.status !== 101 || !res.socket) throw new Error(`upgrade failed: ${res.raw.toString('latin1').slice(0, 300)}`);
  const sock = res.socket;
  const head = parseHead(res.raw);
  let buf = res.raw.subarray(head.headLength);
  const frames = [];
  let closed = false;
  sock.removeAllListeners('data');
  sock.removeAllListeners('end');
  sock.removeAllListeners('close');
  sock.on('error', () => {});
  const onData = (d) => {
    buf = Buffer.concat([buf, d]);
    const r = parseFrames(buf);
    frames.push(...r.frames);
    buf = r.rest;
  };
  onData(Buffer.alloc(0));
  sock.on('data', onData);
  sock.on('close', () => { closed = true; });
  const api = {
    socket: sock,
    frames,
    get closed() { return closed; },
    write: (b) => new Promise((r) => sock.write(b, () => r())),
    /** wait until a frame satisfying pred exists; returns it */
    async waitFrame(pred, ms = 5000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const f = frames.find(pred);
        if (f) return f;
        if (Date.now() > deadline) throw new Error(`timeout waiting for a frame; got ${JSON.stringify(frames.map((x) => [x.op, x.payload.subarray(0, 40).toString('latin1')]))}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    waitText: (text, ms) => api.waitFrame((f) => f.op === 1 && f.payload.toString('latin1') === text, ms),
    destroy: () => sock.destroy(),
  };
  return api;
}
