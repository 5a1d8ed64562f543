// 1 MiB of random bytes each way, byte-exact (sha256).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho, startSink, startSource, sha256 } from './lib/targets.mjs';

const T = { timeout: 30000 };
const MiB = 1024 * 1024;

describe('bulk transfer', () => {
  let srv;
  let echo;
  let sink;
  let source;
  const down = randomBytes(MiB);
  before(async () => {
    srv = await startServer();
    echo = await startEcho();
    sink = await startSink();
    source = await startSource(down);
  });
  after(async () => { await srv?.stop(); await echo?.close(); await sink?.close(); await source?.close(); });

  // Opens a tunnel to the sink, sends with send(t), then CLOSE: the sink must get exactly `up`.
  async function uploadThenClose(up, send) {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    await send(t);
    await t.sendText('CLOSE');
    const c = await sink.waitConnection(n);
    await c.waitEof(15000);
    assert.equal(c.length, up.length);
    assert.equal(sha256(c.data()), sha256(up));
    await t.waitClose(5000).catch(() => t.terminate());
  }

  it('upload: 1 MiB in 64 KiB binary messages reaches the target byte-exact', T, async () => {
    const up = randomBytes(MiB);
    await uploadThenClose(up, (t) => t.sendChunked(up, 64 * 1024));
  });

  it('upload: one 1 MiB binary message reaches the target byte-exact', T, async () => {
    const up = randomBytes(MiB);
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    await t.sendBinary(up);
    const c = await sink.waitConnection(n);
    await c.waitBytes(up.length, 15000);
    assert.equal(sha256(c.data()), sha256(up));
    t.close();
  });

  it('upload: small and large binary messages back to back arrive byte-exact and in order', T, async () => {
    // Reads that hold the small tail of one message and a large head of the next: the tail
    // waits in ech3's coalescing buffer, the head goes out from the receive buffer behind it.
    const sizes = [];
    for (let i = 0; i < 24; i++) sizes.push([1, 37, 5000, 16383][i % 4], [16384, 70000, 200000][i % 3]);
    const parts = sizes.map((n) => randomBytes(n));
    const up = Buffer.concat(parts);
    await uploadThenClose(up, (t) => {
      for (const p of parts) t.ws.send(p, { binary: true }); // queued at once, no waiting between
    });
  });

  it('download: 1 MiB from the target reaches the client byte-exact, then CLOSE and 1000', T, async () => {
    const t = await openTunnel(srv.port, source.target);
    const { bytes, text } = await t.readUntilText(20000);
    assert.equal(bytes.length, down.length);
    assert.equal(sha256(bytes), sha256(down));
    assert.equal(text, 'CLOSE');
    const { code } = await t.waitClose(5000);
    assert.equal(code, 1000);
  });

  it('echo: 1 MiB up and 1 MiB down at the same time, byte-exact', T, async () => {
    const buf = randomBytes(MiB);
    const t = await openTunnel(srv.port, echo.target);
    const reader = t.readBytes(buf.length, 20000);
    await t.sendChunked(buf, 16 * 1024);
    const got = await reader;
    assert.equal(sha256(got), sha256(buf));
    t.close();
  });
});
