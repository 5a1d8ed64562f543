// WebSocket client helper: opens a WebSocket to ech3 with the `ws` package and exposes an ordered,
// promise-based view of what the server sends.

import WebSocket from 'ws';
import { DEFAULT_TOKEN } from './server.mjs';

export class Tunnel {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];        // ordered events: {type:'text'|'binary', data:Buffer} | {type:'close', code, reason}
    this.waiters = [];
    this.pings = 0;
    this.pongs = 0;
    this.closeInfo = null;
    this.pending = Buffer.alloc(0); // binary bytes read but not yet consumed by readBytes
    this.closed = new Promise((resolve) => { this._resolveClosed = resolve; });
    ws.on('message', (data, isBinary) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
      this._push({ type: isBinary ? 'binary' : 'text', data: buf });
    });
    ws.on('ping', () => { this.pings++; });
    ws.on('pong', () => { this.pongs++; });
    ws.on('error', (err) => { this.error = err; });
    ws.on('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString() };
      this._push({ type: 'close', code, reason: reason.toString() });
      this._resolveClosed(this.closeInfo);
    });
  }

  _push(ev) {
    this.queue.push(ev);
    for (const w of this.waiters.splice(0)) w();
  }

  _wait(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(() => { resolve(); }, ms);
      this.waiters.push(() => { clearTimeout(t); resolve(); });
    });
  }

  /** Next event (text, binary or close). Throws on timeout. Close is sticky (not consumed). */
  async next(ms = 5000) {
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.queue.length) {
        const ev = this.queue[0];
        if (ev.type !== 'close') this.queue.shift();
        return ev;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout (${ms} ms) waiting for a message from ech3`);
      await this._wait(left);
    }
  }

  /** Next message must be text; returns it as a latin1 string (bytes preserved). */
  async nextText(ms = 5000) {
    const ev = await this.next(ms);
    if (ev.type === 'close') throw new Error(`expected a text message, got close code=${ev.code} reason=${ev.reason}`);
    if (ev.type !== 'text') throw new Error(`expected a text message, got binary (${ev.data.length} bytes: ${ev.data.subarray(0, 40).toString('latin1')})`);
    return ev.data.toString('latin1');
  }

  /** Read exactly n bytes of binary payload (messages concatenated). A text message or close before n bytes is an error. */
  async readBytes(n, ms = 10000) {
    const deadline = Date.now() + ms;
    const parts = [this.pending];
    let have = this.pending.length;
    while (have < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout: got ${have}/${n} binary bytes within ${ms} ms`);
      const ev = await this.next(left);
      if (ev.type === 'close') throw new Error(`closed (code=${ev.code}) after ${have}/${n} binary bytes`);
      if (ev.type === 'text') throw new Error(`unexpected text message after ${have}/${n} binary bytes: ${ev.data.subarray(0, 80).toString('latin1')}`);
      parts.push(ev.data);
      have += ev.data.length;
    }
    const all = Buffer.concat(parts);
    this.pending = all.subarray(n);
    return all.subarray(0, n);
  }

  /** Collect binary bytes until a text message arrives; returns {bytes, text}. */
  async readUntilText(ms = 10000) {
    const deadline = Date.now() + ms;
    const parts = [this.pending];
    this.pending = Buffer.alloc(0);
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for a text message (${Buffer.concat(parts).length} binary bytes so far)`);
      const ev = await this.next(left);
      if (ev.type === 'close') throw new Error(`closed (code=${ev.code}) before a text message; ${Buffer.concat(parts).length} binary bytes`);
      if (ev.type === 'text') return { bytes: Buffer.concat(parts), text: ev.data.toString('latin1') };
      parts.push(ev.data);
    }
  }

  /** Wait for the WebSocket to close; resolves {code, reason}. */
  async waitClose(ms = 5000) {
    let t;
    return Promise.race([
      this.closed.finally(() => clearTimeout(t)),
      new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timeout (${ms} ms) waiting for the WebSocket to close; queue=${this.describeQueue()}`)), ms); }),
    ]);
  }

  describeQueue() {
    return JSON.stringify(this.queue.map((e) => (e.type === 'close' ? `close:${e.code}` : `${e.type}:${e.data.subarray(0, 60).toString('latin1')}`)));
  }

  send(data, opts = {}) {
    return new Promise((resolve, reject) => {
      this.ws.send(data, opts, (err) => (err ? reject(err) : resolve()));
    });
  }
  sendText(s) { return this.send(Buffer.isBuffer(s) ? s : Buffer.from(s, 'latin1'), { binary: false }); }
  sendBinary(b) { return this.send(b, { binary: true }); }

  /** Send a binary payload in chunks of `chunk` bytes (one message per chunk). */
  async sendChunked(buf, chunk = 64 * 1024) {
    for (let i = 0; i < buf.length; i += chunk) {
      await this.sendBinary(buf.subarray(i, i + chunk));
    }
  }

  get open() { return this.ws.readyState === WebSocket.OPEN; }

  close(code = 1000) { try { this.ws.close(code); } catch { /* ignore */ } }
  terminate() { try { this.ws.terminate(); } catch { /* ignore */ } }
}

/**
 * Open a WebSocket to the server. Rejects with an Error carrying `.status` (and `.body`,
 * `.headers`) when the server answers the upgrade with a non-101 response.
 */
export function openWs(port, {
  token = DEFAULT_TOKEN, protocols, path = '/', host = '127.0.0.1', timeout = 5000, wsOptions = {},
} = {}) {
  const protos = protocols ?? (token == null ? undefined : [token]);
  const h = host.includes(':') ? `[${host}]` : host;
  const url = `ws://${h}:${port}${path}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protos, { perMessageDeflate: false, handshakeTimeout: timeout, ...wsOptions });
    const tun = new Tunnel(ws);
    ws.once('open', () => { ws.off('error', onErr); resolve(tun); });
    const onErr = (err) => reject(err);
    ws.once('error', onErr);
    ws.once('unexpected-response', (req, res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      const finish = () => {
        const e = new Error(`unexpected response ${res.statusCode}`);
        e.status = res.statusCode;
        e.headers = res.headers;
        e.body = Buffer.concat(chunks).toString('utf8');
        reject(e);
        req.destroy();
      };
      res.on('end', finish);
      res.on('error', finish);
      setTimeout(finish, 2000).unref();
    });
  });
}

/**
 * Open a tunnel: WebSocket + `CONNECT:<target>[|<first>]`, and wait for the reply.
 * first: undefined -> `CONNECT:<target>` (no `|`); string (latin1) or Buffer -> `CONNECT:<target>|<first>`.
 * suffix: appended raw after first data (e.g. '|PYIP=a,b').
 * expect: 'CONNECTED' (default; throws otherwise) or null (return {tunnel, reply}).
 */
export async function openTunnel(port, target, { first, suffix = '', expect = 'CONNECTED', replyTimeout = 8000, ...wsOpts } = {}) {
  const t = await openWs(port, wsOpts);
  const parts = [Buffer.from(`CONNECT:${target}`, 'latin1')];
  if (first !== undefined) {
    parts.push(Buffer.from('|'));
    parts.push(Buffer.isBuffer(first) ? first : Buffer.from(first, 'latin1'));
  }
  if (suffix) parts.push(Buffer.from(suffix, 'latin1'));
  await t.sendText(Buffer.concat(parts));
  if (expect === null) {
    return t;
  }
  const reply = await t.nextText(replyTimeout);
  if (reply !== expect) {
    t.terminate();
    throw new Error(`expected ${JSON.stringify(expect)} after CONNECT:${target}, got ${JSON.stringify(reply)}`);
  }
  return t;
}
