// Hostile input, end to end: a table of malformed or abusive client input, each with the answer
// the server must give, and after every case the server must still serve a normal tunnel (and no
// worker may have died). Raw TCP sockets throughout (tests/e2e/lib/raw.mjs, lib/hostile.mjs):
// the `ws` client refuses to send most of this.
//
// Where each rule is enforced (worker/ws.c): frame headers (non-minimal or 2^63+ lengths, control
// frames fragmented or over 125 bytes) in parse_frame_head -> 1002 "malformed frame header";
// RSV bits, unmasked frames, reserved opcodes, continuation/new-message order and max_message
// (-> 1009) in frame_start; close payloads (1 byte, invalid codes) in control_done. Commands
// (CONNECT target syntax) in worker/command.c -> "ERROR:<why>" text then close 1000. The HTTP head
// in worker/http.c (400 / 431) and worker/conn.c read_head (431 when the buffer fills,
// handshake_timeout).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes, createHash } from 'node:crypto';
import { startServer } from './lib/server.mjs';
import { startSink, startEcho } from './lib/targets.mjs';
import { rawRequest, upgradeRequest, wsFrame, parseHead } from './lib/raw.mjs';
import {
  frame, closeFrame, rawTunnel, assertServes, assertNoWorkerDied, halfOpen, sleep,
} from './lib/hostile.mjs';

const T = { timeout: 20000 };
const MAX_MESSAGE = 65536;

const sha = (b) => createHash('sha256').update(b).digest('hex');

// ---------------------------------------------------------------------------------------------
// Frames sent on an open tunnel (after CONNECT:<sink> / CONNECTED).

/**
 * [name, bytes to send, acceptable close codes, also acceptable: closed without a close frame,
 *  bytes the target may have received before the violation (default 0)]
 */
const FRAME_CASES = [
  ['unmasked client frame', () => frame(2, 'abc', { mask: null }), [1002]],
  ['unmasked client text frame', () => frame(1, 'DATA:x', { mask: null }), [1002]],
  ['64-bit length with the top bit set', () => frame(2, '', { len: 1n << 63n, lenForm: 64 }), [1002], true],
  ['64-bit length 2^64-1', () => frame(2, '', { len: (1n << 64n) - 1n, lenForm: 64 }), [1002], true],
  ['non-minimal length (5 bytes in the 16-bit form)', () => frame(2, 'hello', { lenForm: 16 }), [1002], true],
  ['non-minimal length (300 bytes in the 64-bit form)', () => frame(2, Buffer.alloc(300), { lenForm: 64 }), [1002], true],
  ['ping with a 126-byte payload', () => frame(9, Buffer.alloc(126, 0x70)), [1002]],
  ['pong with a 200-byte payload', () => frame(10, Buffer.alloc(200, 0x70)), [1002]],
  ['close with a 126-byte payload', () => frame(8, Buffer.concat([Buffer.from([3, 0xe8]), Buffer.alloc(124, 0x72)])), [1002]],
  ['ping with a 64-bit length (65536)', () => frame(9, '', { len: 65536, lenForm: 64 }), [1002], true],
  ['fragmented ping (no FIN)', () => frame(9, 'x', { fin: false }), [1002]],
  ['fragmented close (no FIN)', () => frame(8, Buffer.from([3, 0xe8]), { fin: false }), [1002]],
  ...[3, 4, 5, 6, 7].map((op) => [`reserved data opcode 0x${op.toString(16)}`, () => frame(op, 'abc'), [1002]]),
  ...[0xb, 0xc, 0xd, 0xe, 0xf].map((op) => [`reserved control opcode 0x${op.toString(16)}`, () => frame(op, 'abc'), [1002]]),
  ['RSV1 set (no extension was negotiated)', () => frame(2, 'abc', { rsv: 4 }), [1002]],
  ['RSV2 set', () => frame(2, 'abc', { rsv: 2 }), [1002]],
  ['RSV3 set', () => frame(2, 'abc', { rsv: 1 }), [1002]],
  ['RSV bits on a ping', () => frame(9, 'abc', { rsv: 7 }), [1002]],
  ...[999, 1004, 1005, 1006, 1015, 2000, 2999, 5000, 65535].map((code) => [`close code ${code} (invalid on the wire)`, () => closeFrame(code), [1002]]),
  ['close with a 1-byte payload', () => wsFrame(8, Buffer.from([3])), [1002]],
  ['continuation frame without a message', () => frame(0, 'abc'), [1002]],
  ['a new binary message inside a fragmented one', () => Buffer.concat([frame(2, 'ab', { fin: false }), frame(2, 'cd')]), [1002], false, 2],
  ['a text message inside a fragmented binary one', () => Buffer.concat([frame(2, 'ab', { fin: false }), frame(1, 'cd')]), [1002], false, 2],
  [`binary frame announcing max_message + 1 (${MAX_MESSAGE + 1}) bytes`, () => frame(2, Buffer.alloc(16), { len: MAX_MESSAGE + 1 }), [1009]],
  ['binary frame announcing 2^62 bytes', () => frame(2, '', { len: 1n << 62n, lenForm: 64 }), [1009]],
  ['fragments adding up to more than max_message', () => Buffer.concat([
    frame(2, Buffer.alloc(40000, 1), { fin: false }), frame(0, Buffer.alloc(40000, 2)),
  ]), [1009], false, 40000],
  ['a text message over max_message', () => frame(1, Buffer.alloc(MAX_MESSAGE + 100, 0x41)), [1009]],
];

describe('hostile input: WebSocket frames on an open tunnel', () => {
  let srv;
  let sink;
  let echo;
  before(async () => {
    srv = await startServer({ workers: 1, set: { max_message: MAX_MESSAGE } });
    sink = await startSink();
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await sink?.close(); await echo?.close(); });

  for (const [name, bytes, codes, dropOk, relayed = 0] of FRAME_CASES) {
    it(`${name} → close ${codes.join('/')}${dropOk ? ' (or closed)' : ''}; still serving`, T, async () => {
      const n = sink.conns.length;
      const ws = await rawTunnel(srv.port, sink.target);
      const conn = await sink.waitConnection(n);
      try {
        await ws.write(bytes());
        const r = await ws.waitClose(5000);
        if (r.code === null && dropOk) {
          assert.ok(r.closed, 'neither a close frame nor a closed connection');
        } else {
          assert.ok(codes.includes(r.code),
            `close code ${r.code} (closed=${r.closed}), expected ${codes.join('/')}; frames: ${JSON.stringify(r.frames.map((f) => [f.op, f.payload.subarray(0, 20).toString('latin1')]))}`);
        }
        // the tunnel ends, and nothing of the offending frame reaches the target
        await conn.waitClosed(5000);
        assert.ok(conn.length <= relayed, `the target got ${conn.length} bytes (at most ${relayed} expected)`);
      } finally {
        ws.destroy();
      }
      await assertServes(srv, echo);
      assertNoWorkerDied(srv, name);
    });
  }

  it('valid close codes are echoed: 1000, 3000, 4999, and an empty close → 1000', T, async () => {
    for (const [bytes, want] of [[closeFrame(1000), 1000], [closeFrame(3000), 3000], [closeFrame(4999, 'bye'), 4999], [wsFrame(8), 1000]]) {
      const ws = await rawTunnel(srv.port, sink.target);
      await ws.write(bytes);
      const r = await ws.waitClose(5000);
      ws.destroy();
      assert.equal(r.code, want);
    }
    await assertServes(srv, echo);
    assertNoWorkerDied(srv);
  });

  it('10,000 tiny fragments of one binary message (pings between some) → every byte reaches the target', T, async () => {
    const n = sink.conns.length;
    const ws = await rawTunnel(srv.port, sink.target);
    const conn = await sink.waitConnection(n);
    const N = 10000;
    const pieces = [];
    const frames = [];
    for (let i = 0; i < N; i++) {
      const p = randomBytes(1 + (i % 3));
      pieces.push(p);
      frames.push(frame(i === 0 ? 2 : 0, p, { fin: i === N - 1 }));
      if (i % 1000 === 500) frames.push(frame(9, `p${i}`));
    }
    const want = Buffer.concat(pieces);
    const all = Buffer.concat(frames);
    // several writes, splitting frames anywhere
    for (let off = 0; off < all.length; off += 7919) await ws.write(all.subarray(off, off + 7919));
    // then a normal message: the fragmented one must have ended cleanly
    await ws.write(frame(2, 'after'));
    const got = await conn.waitBytes(want.length + 5, 10000);
    assert.equal(got.length, want.length + 5);
    assert.equal(sha(got.subarray(0, want.length)), sha(want));
    assert.equal(got.subarray(want.length).toString(), 'after');
    assert.equal(ws.closeCode(), null, 'the server closed the tunnel');
    await ws.waitFrame((f) => f.op === 10 && f.payload.toString() === 'p9500', 5000);
    ws.destroy();
    await assertServes(srv, echo);
    assertNoWorkerDied(srv);
  });

  // A reserved control opcode fails in frame_start after the frame state was set (in_frame = 1)
  // and before ctrl_len is reset; linger() then keeps parsing that frame's payload and copies it
  // to ctrl + (stale ctrl_len). Payload bytes 0x40 overwrite ctrl_len itself; the next read then
  // writes at ctrl + 0x4040404040404040.
  it('reserved control opcode after a 125-byte ping, payload split over two reads → close 1002; the worker survives', T, async () => {
    const ws = await rawTunnel(srv.port, sink.target);
    try {
      const bad = frame(0xb, Buffer.alloc(125, 0x40));
      const head = bad.subarray(0, 6); // 2-byte header + mask key
      await ws.write(Buffer.concat([frame(9, Buffer.alloc(125, 0x50)), head, bad.subarray(6, 6 + 60)]));
      const r = await ws.waitClose(5000);
      assert.equal(r.code, 1002);
      await sleep(300);
      await ws.write(bad.subarray(6 + 60));
      await sleep(500);
    } finally {
      ws.destroy();
    }
    assertNoWorkerDied(srv, 'reserved control opcode after a ping');
    await assertServes(srv, echo);
  });
});

// ---------------------------------------------------------------------------------------------
// Commands: CONNECT targets the server must refuse with ERROR:<why>, then close 1000.

const CONNECT_CASES = [
  ['port 0', 'CONNECT:127.0.0.1:0'],
  ['port 65536', 'CONNECT:127.0.0.1:65536'],
  ['port 99999999999', 'CONNECT:127.0.0.1:99999999999'],
  ['port abc', 'CONNECT:127.0.0.1:abc'],
  ['negative port', 'CONNECT:127.0.0.1:-80'],
  ['no port', 'CONNECT:127.0.0.1'],
  ['empty target', 'CONNECT:'],
  ['a NUL byte in the host', 'CONNECT:127.0.0\x00.1:80'],
  ['a NUL byte in the port', 'CONNECT:127.0.0.1:8\x000'],
  ['a 10 KiB host', `CONNECT:${'a'.repeat(10 * 1024)}:80`],
  ['a 254-byte host', `CONNECT:${'b'.repeat(254)}:80`],
  ['spaces and slashes in the host', 'CONNECT:exa mple.com/x:80'],
  ['userinfo in the host', 'CONNECT:user@127.0.0.1:80'],
  ['unclosed IPv6 bracket', 'CONNECT:[::1:80'],
  ['IPv6 without a port', 'CONNECT:[::1]'],
  ['CR LF in the target', 'CONNECT:127.0.0.1:80\r\nHost: x'],
];

describe('hostile input: commands', () => {
  let srv;
  let echo;
  before(async () => {
    srv = await startServer({ workers: 1, set: { max_message: MAX_MESSAGE } });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); });

  for (const [name, msg] of CONNECT_CASES) {
    it(`CONNECT with ${name} → ERROR:… then close 1000; still serving`, T, async () => {
      const ws = await rawTunnel(srv.port, null);
      try {
        await ws.write(wsFrame(1, Buffer.from(msg, 'latin1')));
        const f = await ws.waitFrame((x) => x.op === 1, 5000);
        assert.match(f.payload.toString('latin1'), /^ERROR:/);
        const r = await ws.waitClose(5000);
        assert.equal(r.code, 1000);
      } finally {
        ws.destroy();
      }
      await assertServes(srv, echo);
      assertNoWorkerDied(srv, name);
    });
  }

  for (const [name, bytes] of [
    ['binary data before CONNECT', () => wsFrame(2, 'hello')],
    ['DATA: before CONNECT', () => wsFrame(1, 'DATA:hello')],
    ['an unknown text command', () => wsFrame(1, 'HELLO')],
    ['lowercase connect:', () => wsFrame(1, `connect:127.0.0.1:${echo.port}`)],
  ]) {
    it(`${name} → ERROR:… then close 1000`, T, async () => {
      const ws = await rawTunnel(srv.port, null);
      try {
        await ws.write(bytes());
        const f = await ws.waitFrame((x) => x.op === 1, 5000);
        assert.match(f.payload.toString('latin1'), /^ERROR:/);
        assert.equal((await ws.waitClose(5000)).code, 1000);
      } finally {
        ws.destroy();
      }
      await assertServes(srv, echo);
      assertNoWorkerDied(srv, name);
    });
  }

  it('a second CONNECT on an open tunnel → ERROR:… then close 1000', T, async () => {
    const ws = await rawTunnel(srv.port, echo.target);
    try {
      await ws.write(wsFrame(1, `CONNECT:${echo.target}`));
      const f = await ws.waitFrame((x) => x.op === 1 && x.payload.toString().startsWith('ERROR:'), 5000);
      assert.ok(f);
      assert.equal((await ws.waitClose(5000)).code, 1000);
    } finally {
      ws.destroy();
    }
    await assertServes(srv, echo);
  });
});

// ---------------------------------------------------------------------------------------------
// The HTTP request head.

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
function head(lines) { return `${lines.join('\r\n')}\r\n\r\n`; }
const GOOD = [
  'GET / HTTP/1.1', 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade',
  `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: e2e-secret-token',
];
const without = (name) => GOOD.filter((l) => !l.toLowerCase().startsWith(`${name.toLowerCase()}:`));

const HTTP_CASES = [
  ['a header line without a colon', head([...GOOD, 'NoColonHere']), 400],
  ['a header name with a space before the colon', head([...GOOD, 'X-Bad : 1']), 400],
  ['duplicate Sec-WebSocket-Key', head([...GOOD, `Sec-WebSocket-Key: ${KEY}`]), 400],
  ['duplicate Sec-WebSocket-Key, different case', head([...GOOD, `sec-websocket-key: ${randomBytes(16).toString('base64')}`]), 400],
  ['missing Sec-WebSocket-Key', head(without('Sec-WebSocket-Key')), 400],
  ['a Sec-WebSocket-Key that is not 16 bytes of base64', head([...without('Sec-WebSocket-Key'), 'Sec-WebSocket-Key: abc']), 400],
  ['a Sec-WebSocket-Key with a bad character', head([...without('Sec-WebSocket-Key'), 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=!']), 400],
  ['duplicate Sec-WebSocket-Version', head([...GOOD, 'Sec-WebSocket-Version: 13']), 400],
  ['Sec-WebSocket-Version: 8', head([...without('Sec-WebSocket-Version'), 'Sec-WebSocket-Version: 8']), 426],
  ['Connection without upgrade', head([...without('Connection'), 'Connection: keep-alive']), 400],
  ['POST upgrade', head(['POST / HTTP/1.1', ...GOOD.slice(1)]), 400],
  ['HTTP/1.0 upgrade', head(['GET / HTTP/1.0', ...GOOD.slice(1)]), 400],
  ['HTTP/2.0 in the request line', head(['GET / HTTP/2.0', ...GOOD.slice(1)]), 400],
  ['a NUL byte in a header value', head([...GOOD, 'X-Nul: a\x00b']), 400],
  ['a NUL byte in the request line', head(['GET /\x00 HTTP/1.1', ...GOOD.slice(1)]), 400],
  ['a control character in a header value', head([...GOOD, 'X-Ctl: a\x01b']), 400],
  ['obsolete line folding', head([...GOOD, 'X-Folded: a', ' b']), 400],
  ['a bare CR inside a header value', head([...GOOD, 'X-CR: a\rb']), 400],
  ['a TLS ClientHello on the plain port', Buffer.from('16030100a5010000a10303', 'hex'), 400],
  ['a request line without a target', head(['GET HTTP/1.1', ...GOOD.slice(1)]), 400],
  ['70 header lines (max_headers 64)', head([...GOOD, ...Array.from({ length: 63 }, (_, i) => `X-H${i}: ${i}`)]), 431],
];

describe('hostile input: HTTP request heads', () => {
  let srv;
  let echo;
  before(async () => {
    srv = await startServer({ workers: 1, set: { max_header_bytes: 8192, max_headers: 64 } });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); });

  for (const [name, req, status] of HTTP_CASES) {
    it(`${name} → ${status}; still serving`, T, async () => {
      const res = await rawRequest(srv.port, req, { timeout: 5000 });
      assert.equal(res.status, status, `${name}: ${res.raw.toString('latin1').slice(0, 200)}`);
      await assertServes(srv, echo);
      assertNoWorkerDied(srv, name);
    });
  }

  it('a request head over max_header_bytes (8192, never finished) → 431; still serving', T, async () => {
    // exactly the buffer's size and no blank line: the server reads it all and then answers, so
    // no unread bytes can turn its close into a reset that eats the answer
    let req = `${GOOD.join('\r\n')}\r\nX-Pad: `;
    req += 'p'.repeat(8192 - req.length);
    const res = await rawRequest(srv.port, req, { timeout: 5000 });
    assert.equal(res.status, 431, res.raw.toString('latin1').slice(0, 200));
    await assertServes(srv, echo);
    assertNoWorkerDied(srv);
  });

  it('a complete request over max_header_bytes (one 20 KiB header) → 431 or closed, never 101', T, async () => {
    const res = await rawRequest(srv.port, head([...GOOD, `X-Big: ${'q'.repeat(20 * 1024)}`]), { timeout: 5000 });
    assert.ok(res.status === 431 || (res.status === null && res.closed), `got ${res.statusLine} closed=${res.closed}`);
    await assertServes(srv, echo);
    assertNoWorkerDied(srv);
  });
});

// ---------------------------------------------------------------------------------------------
// Slow and silent clients: handshake_timeout = 2.

describe('hostile input: slow and silent clients (handshake_timeout=2)', () => {
  let srv;
  let echo;
  before(async () => {
    srv = await startServer({ workers: 1, set: { handshake_timeout: 2 } });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); });

  it('slowloris (one header byte per 500 ms) is closed by ~2 s, others served meanwhile', { timeout: 30000 }, async () => {
    const req = Buffer.from(upgradeRequest().request, 'latin1');
    const started = Date.now();
    let closedAt = null;
    let got = Buffer.alloc(0);
    const sock = net.connect({ port: srv.port, host: '127.0.0.1' });
    sock.on('error', () => {});
    sock.on('data', (d) => { got = Buffer.concat([got, d]); });
    sock.on('close', () => { closedAt = Date.now(); });
    await new Promise((r) => sock.once('connect', r));
    let sent = 0;
    const timer = setInterval(() => {
      if (closedAt !== null || sent >= req.length) return;
      sock.write(req.subarray(sent, sent + 1));
      sent++;
    }, 500);
    try {
      // meanwhile a normal client gets a tunnel promptly
      await sleep(700);
      const el = await assertServes(srv, echo, 3000);
      assert.ok(closedAt === null, 'the slow client was closed before the deadline');
      assert.ok(el < 3000);
      while (closedAt === null && Date.now() - started < 8000) await sleep(20);
    } finally {
      clearInterval(timer);
      sock.destroy();
    }
    assert.ok(closedAt !== null, 'the slow client was never closed');
    const after = closedAt - started;
    assert.ok(after >= 1500 && after <= 4000, `closed after ${after} ms (handshake_timeout 2 s)`);
    const h = parseHead(got);
    assert.ok(h === null || h.status !== 101, 'the slow client got a 101');
    assert.ok(sent < req.length, 'the whole request went out before the timeout');
    await assertServes(srv, echo);
    assertNoWorkerDied(srv);
  });

  it('1,000 half-open connections: a normal client still gets a tunnel promptly; all closed by the timeout', { timeout: 60000 }, async () => {
    const socks = await halfOpen(srv.port, 1000);
    const opened = Date.now();
    try {
      const el = await assertServes(srv, echo, 5000);
      assert.ok(el < 5000, `a tunnel took ${el} ms next to 1,000 idle connections`);
      const deadline = opened + 2000 + 6000;
      while (socks.some((s) => s.closedAt === null) && Date.now() < deadline) await sleep(50);
      const open = socks.filter((s) => s.closedAt === null).length;
      assert.equal(open, 0, `${open} of 1,000 idle connections still open ${Date.now() - opened} ms after connecting`);
      const last = Math.max(...socks.map((s) => s.closedAt));
      assert.ok(last - opened <= 2000 + 6000, `the last one closed ${last - opened} ms after connecting`);
    } finally {
      for (const s of socks) s.destroy();
    }
    await assertServes(srv, echo);
    assertNoWorkerDied(srv);
  });
});
