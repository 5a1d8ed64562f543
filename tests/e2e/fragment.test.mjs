// Fragmented client messages (continuation frames), as Go clients send them.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServer } from './lib/server.mjs';
import { openWs, openTunnel } from './lib/client.mjs';
import { startSink, sha256 } from './lib/targets.mjs';

const T = { timeout: 20000 };

/** send buf as one message split into fragments of size `frag` */
async function sendFragmented(t, buf, frag, binary = true) {
  for (let i = 0; i < buf.length; i += frag) {
    const last = i + frag >= buf.length;
    await t.send(buf.subarray(i, i + frag), { binary, fin: last });
  }
}

describe('fragmented client messages', () => {
  let srv;
  let sink;
  before(async () => { srv = await startServer(); sink = await startSink(); });
  after(async () => { await srv?.stop(); await sink?.close(); });

  it('a binary message in three fragments', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    await t.send(Buffer.from('frag-1;'), { binary: true, fin: false });
    await t.send(Buffer.from('frag-2;'), { binary: true, fin: false });
    await t.send(Buffer.from('frag-3'), { binary: true, fin: true });
    await t.sendBinary(Buffer.from(';next-message'));
    const c = await sink.waitConnection(n);
    assert.equal((await c.waitBytes(33)).toString(), 'frag-1;frag-2;frag-3;next-message');
    t.close();
  });

  it('a 256 KiB binary message in 4 KiB fragments (gorilla default), byte-exact', T, async () => {
    const buf = randomBytes(256 * 1024);
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    await sendFragmented(t, buf, 4096);
    const c = await sink.waitConnection(n);
    await c.waitBytes(buf.length, 10000);
    assert.equal(sha256(c.data()), sha256(buf));
    t.close();
  });

  it('ping control frames between fragments', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    await t.send(Buffer.from('A'.repeat(1000)), { binary: true, fin: false });
    t.ws.ping(Buffer.from('p1'));
    await t.send(Buffer.from('B'.repeat(1000)), { binary: true, fin: false });
    t.ws.ping(Buffer.from('p2'));
    await t.send(Buffer.from('C'.repeat(1000)), { binary: true, fin: true });
    const c = await sink.waitConnection(n);
    const got = await c.waitBytes(3000);
    assert.equal(got.toString(), 'A'.repeat(1000) + 'B'.repeat(1000) + 'C'.repeat(1000));
    const deadline = Date.now() + 3000;
    while (t.pongs < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(t.pongs, 2, 'pongs received');
    t.close();
  });

  it('a fragmented text CONNECT command', T, async () => {
    const n = sink.conns.length;
    const t = await openWs(srv.port);
    const cmd = Buffer.from(`CONNECT:${sink.target}|first data, fragmented!`);
    await sendFragmented(t, cmd, 7, false);
    assert.equal(await t.nextText(), 'CONNECTED');
    const c = await sink.waitConnection(n);
    assert.equal((await c.waitBytes(23)).toString(), 'first data, fragmented!');
    t.close();
  });

  it('a fragmented text DATA: command', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    await sendFragmented(t, Buffer.from('DATA:0123456789abcdefghij'), 4, false);
    const c = await sink.waitConnection(n);
    assert.equal((await c.waitBytes(20)).toString(), '0123456789abcdefghij');
    t.close();
  });
});
