// Helpers for the hostile-input tables (tests/e2e/hostile-*.test.mjs): hand-made frames that a
// well-behaved client library refuses to produce, a raw tunnel that has sent CONNECT, waiting for
// the server's close code, a "does it still serve" probe and the worker-death check.

import net from 'node:net';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { rawWs, wsFrame } from './raw.mjs';
import { openTunnel } from './client.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * One client frame with every header field under control.
 * op: opcode 0-15; payload: Buffer|string; fin; rsv (0-7); mask: 4-byte Buffer or null (unmasked);
 * len: the length to announce (defaults to the payload's); lenForm: 7 | 16 | 64 forces the length
 * encoding (e.g. a 64-bit length with the top bit set: len = 1n << 63n, lenForm = 64).
 */
export function frame(op, payload = Buffer.alloc(0), {
  fin = true, rsv = 0, mask = randomBytes(4), len, lenForm,
} = {}) {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'latin1');
  const n = len !== undefined ? BigInt(len) : BigInt(p.length);
  const form = lenForm ?? (n < 126n ? 7 : n < 65536n ? 16 : 64);
  const b0 = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (op & 0x0f);
  const m = mask ? 0x80 : 0;
  let hdr;
  if (form === 7) {
    hdr = Buffer.from([b0, m | Number(n)]);
  } else if (form === 16) {
    hdr = Buffer.alloc(4);
    hdr[0] = b0; hdr[1] = m | 126; hdr.writeUInt16BE(Number(n), 2);
  } else {
    hdr = Buffer.alloc(10);
    hdr[0] = b0; hdr[1] = m | 127; hdr.writeBigUInt64BE(n, 2);
  }
  if (!mask) return Buffer.concat([hdr, p]);
  const body = Buffer.alloc(p.length);
  for (let i = 0; i < p.length; i++) body[i] = p[i] ^ mask[i % 4];
  return Buffer.concat([hdr, mask, body]);
}

/** A close frame with a 2-byte code (and optional reason). */
export function closeFrame(code, reason = '') {
  const p = Buffer.alloc(2 + Buffer.byteLength(reason));
  p.writeUInt16BE(code, 0);
  p.write(reason, 2);
  return wsFrame(8, p);
}

/**
 * Open a raw WebSocket (rawWs) and, when target is given, send CONNECT and wait for CONNECTED.
 * Returns the rawWs api plus closeInfo() / waitClose().
 */
export async function rawTunnel(port, target, { token } = {}) {
  const ws = await rawWs(port, token ? { token } : {});
  decorate(ws);
  if (target) {
    await ws.write(wsFrame(1, `CONNECT:${target}`));
    await ws.waitText('CONNECTED', 5000);
  }
  return ws;
}

function decorate(ws) {
  let closedAt = null;
  ws.socket.on('close', () => { closedAt = Date.now(); });
  /** the server's close code: from its close frame, 1005 for an empty one, null if none (yet) */
  ws.closeCode = () => {
    const f = ws.frames.find((x) => x.op === 8);
    if (!f) return null;
    return f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
  };
  /**
   * Wait for the server's close frame or the connection's end, whichever first.
   * Resolves { code (number|null), closed (socket closed), frames }.
   */
  ws.waitClose = async (ms = 5000) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (ws.closeCode() !== null || closedAt !== null) break;
      await sleep(10);
    }
    return { code: ws.closeCode(), closed: closedAt !== null, frames: ws.frames };
  };
  /** Wait for the TCP connection to be closed by the server (after its close frame). */
  ws.waitEnd = async (ms = 5000) => {
    const deadline = Date.now() + ms;
    while (closedAt === null && Date.now() < deadline) await sleep(10);
    return closedAt !== null;
  };
  return ws;
}

/** Lines of the master saying a worker died (crash, abort, sanitizer exit). */
export function workerDeaths(srv) {
  return srv.lines.filter((l) => /worker \d+ \(pid \d+\) (killed by signal|exited with status)/.test(l));
}

/** Assert that no worker has died since the server started. */
export function assertNoWorkerDied(srv, what = '') {
  const d = workerDeaths(srv);
  assert.equal(d.length, 0, `a worker died${what ? ` (${what})` : ''}:\n${d.join('\n')}\n--- log ---\n${srv.dumpLog(30)}`);
}

/**
 * The server still serves: a new tunnel (ws client) to the echo target carries bytes both ways
 * within `ms`. Returns the elapsed ms.
 */
export async function assertServes(srv, echo, ms = 5000) {
  const started = Date.now();
  const t = await openTunnel(srv.port, echo.target);
  try {
    const payload = randomBytes(1024);
    await t.sendBinary(payload);
    const back = await t.readBytes(payload.length, ms);
    assert.ok(back.equals(payload), 'echo through a fresh tunnel came back different');
  } finally {
    t.close();
  }
  const el = Date.now() - started;
  assert.ok(el < ms, `a fresh tunnel took ${el} ms`);
  return el;
}

/** Open n TCP connections to port that send nothing; resolves the sockets once all are connected. */
export async function halfOpen(port, n, host = '127.0.0.1') {
  const socks = [];
  const pending = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect({ port, host });
    s.closedAt = null;
    s.on('error', () => {});
    s.on('close', () => { s.closedAt = Date.now(); });
    s.on('data', () => {});
    socks.push(s);
    pending.push(new Promise((resolve) => { s.once('connect', resolve); s.once('error', resolve); }));
    // a few at a time, so the listen backlog never overflows
    if (pending.length % 100 === 0) await Promise.all(pending.slice(-100));
  }
  await Promise.all(pending);
  return socks;
}
