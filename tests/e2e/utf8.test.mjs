// Invalid UTF-8 in text frames must not be rejected; bytes reach the target byte-exact.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startSink } from './lib/targets.mjs';

const T = { timeout: 15000 };

// Invalid sequences: lone continuation, overlong, surrogate, truncated, 0xff/0xfe, NUL.
const INVALID = Buffer.from([
  0x80, 0xbf, 0xc0, 0xaf, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0xf4, 0x90, 0x80, 0x80,
  0xff, 0xfe, 0x00, 0x41, 0xe2, 0x82,
]);
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

describe('invalid UTF-8 in text frames', () => {
  let srv;
  let sink;
  before(async () => { srv = await startServer(); sink = await startSink(); });
  after(async () => { await srv?.stop(); await sink?.close(); });

  it('in the first data of CONNECT', T, async () => {
    const first = Buffer.concat([INVALID, ALL_BYTES]);
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target, { first });
    const c = await sink.waitConnection(n);
    assert.deepEqual(await c.waitBytes(first.length), first);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(c.data(), first);
    assert.ok(t.open, `closed: ${JSON.stringify(t.closeInfo)}`);
    t.close();
  });

  it('in DATA:', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    await t.sendText(Buffer.concat([Buffer.from('DATA:'), INVALID]));
    await t.sendText(Buffer.concat([Buffer.from('DATA:'), ALL_BYTES]));
    const c = await sink.waitConnection(n);
    const want = Buffer.concat([INVALID, ALL_BYTES]);
    assert.deepEqual(await c.waitBytes(want.length), want);
    assert.ok(t.open, `closed: ${JSON.stringify(t.closeInfo)}`);
    t.close();
  });

  it('a TLS ClientHello-like first data (0x16 0x03 0x01 ...) is passed through', T, async () => {
    const first = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0xa7, 0xe9, 0x81]);
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target, { first });
    const c = await sink.waitConnection(n);
    assert.deepEqual(await c.waitBytes(first.length), first);
    t.close();
  });
});
