// TCP targets on loopback for the tunnel to connect to.
//
// Every target records its connections: { socket, chunks, data(), eof (promise resolved on FIN
// from the tunnel side), closed (promise resolved on close), remote }.

import net from 'node:net';
import { createHash } from 'node:crypto';

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timeout (${ms} ms): ${what}`)), ms); }),
  ]);
}

/**
 * Generic target. onConnection(conn) is called for every accepted connection after the
 * bookkeeping is installed. Sockets are half-open capable (allowHalfOpen) so a test can observe
 * the EOF from the tunnel and still write.
 */
export async function startTarget({ host = '127.0.0.1', port = 0, onConnection = () => {} } = {}) {
  const conns = [];
  const waiters = [];
  const sockets = new Set();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    const chunks = [];
    let resolveEof, resolveClosed;
    const conn = {
      socket,
      chunks,
      remote: `${socket.remoteAddress}:${socket.remotePort}`,
      eofSeen: false,
      closedSeen: false,
      eof: new Promise((r) => { resolveEof = r; }),
      closed: new Promise((r) => { resolveClosed = r; }),
      data: () => Buffer.concat(chunks),
      get length() { return chunks.reduce((n, c) => n + c.length, 0); },
      /** wait until at least n bytes were received */
      async waitBytes(n, ms = 5000) {
        const deadline = Date.now() + ms;
        while (conn.length < n) {
          if (Date.now() > deadline) throw new Error(`target got ${conn.length}/${n} bytes within ${ms} ms`);
          await new Promise((r) => setTimeout(r, 10));
        }
        return conn.data();
      },
      waitEof: (ms = 5000) => withTimeout(conn.eof, ms, 'target waiting for EOF from tunnel'),
      waitClosed: (ms = 5000) => withTimeout(conn.closed, ms, 'target waiting for socket close'),
    };
    socket.on('data', (d) => chunks.push(d));
    socket.on('end', () => { conn.eofSeen = true; resolveEof(); });
    socket.on('close', () => { conn.closedSeen = true; sockets.delete(socket); resolveEof(); resolveClosed(); });
    socket.on('error', () => { /* reset by peer etc.: close follows */ });
    conns.push(conn);
    for (const w of waiters.splice(0)) w();
    onConnection(conn);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address();
  return {
    server,
    host,
    port: addr.port,
    conns,
    /** "host:port" suitable for CONNECT (brackets for IPv6) */
    target: host.includes(':') ? `[${host}]:${addr.port}` : `${host}:${addr.port}`,
    /** wait until the i-th connection (0-based) has been accepted */
    async waitConnection(i = 0, ms = 5000) {
      const deadline = Date.now() + ms;
      while (conns.length <= i) {
        if (Date.now() > deadline) throw new Error(`target ${host}:${addr.port} did not get connection #${i} within ${ms} ms`);
        await new Promise((r) => { const t = setTimeout(r, 50); waiters.push(() => { clearTimeout(t); r(); }); });
      }
      return conns[i];
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** Echo every byte back; end the write side when the tunnel ends its side. */
export function startEcho(opts = {}) {
  return startTarget({
    ...opts,
    onConnection: (c) => {
      c.socket.on('data', (d) => c.socket.write(d));
      c.socket.on('end', () => c.socket.end());
    },
  });
}

/** Record everything, send nothing; close when the tunnel side ends. */
export function startSink(opts = {}) {
  return startTarget({
    ...opts,
    onConnection: (c) => { c.socket.on('end', () => c.socket.end()); },
  });
}

/** Send `payload` (Buffer or function(conn)->Buffer) and then close the connection. */
export function startSource(payload, { delayMs = 0, ...opts } = {}) {
  return startTarget({
    ...opts,
    onConnection: (c) => {
      const buf = typeof payload === 'function' ? payload(c) : payload;
      setTimeout(() => c.socket.end(buf), delayMs);
    },
  });
}

export const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

/** true if the host has a usable ::1 */
export async function haveIPv6Loopback() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(0, '::1', () => s.close(() => resolve(true)));
  });
}

/** A loopback port that refuses connections right now (bound, then released). */
export async function closedPort(host = '127.0.0.1') {
  const s = net.createServer();
  await new Promise((r, j) => { s.once('error', j); s.listen(0, host, r); });
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}
