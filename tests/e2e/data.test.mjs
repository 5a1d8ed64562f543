// DATA: text frames and binary frames that look like commands.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startSink, startEcho } from './lib/targets.mjs';

const T = { timeout: 15000 };

describe('DATA: and binary payload', () => {
  let srv;
  let sink;
  let echo;
  before(async () => { srv = await startServer(); sink = await startSink(); echo = await startEcho(); });
  after(async () => { await srv?.stop(); await sink?.close(); await echo?.close(); });

  it('DATA:<bytes> writes the bytes to the target', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    await t.sendText('DATA:hello via text');
    const c = await sink.waitConnection(n);
    assert.equal((await c.waitBytes(14)).toString(), 'hello via text');
    t.close();
  });

  it('DATA: and binary frames interleave in order', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    await t.sendText('DATA:a1;');
    await t.sendBinary(Buffer.from('b2;'));
    await t.sendText('DATA:');
    await t.sendText('DATA:c3;');
    await t.sendBinary(Buffer.from('d4'));
    const c = await sink.waitConnection(n);
    assert.equal((await c.waitBytes(11)).toString(), 'a1;b2;c3;d4');
    assert.ok(t.open);
    t.close();
  });

  it('DATA: containing "|" and ":" and "CLOSE"', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    await t.sendText('DATA:CLOSE|CONNECT:1.2.3.4:5');
    const c = await sink.waitConnection(n);
    assert.equal((await c.waitBytes(23)).toString(), 'CLOSE|CONNECT:1.2.3.4:5');
    t.close();
  });

  it('a binary frame spelling CLOSE is payload, not a command', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    await t.sendBinary(Buffer.from('CLOSE'));
    await t.sendBinary(Buffer.from('DATA:x'));
    await t.sendBinary(Buffer.from('CONNECT:127.0.0.1:1'));
    const c = await sink.waitConnection(n);
    assert.equal((await c.waitBytes(30)).toString(), 'CLOSEDATA:xCONNECT:127.0.0.1:1');
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(t.open, `tunnel closed: ${JSON.stringify(t.closeInfo)}`);
    assert.equal(c.eofSeen, false, 'target saw EOF');
    t.close();
  });

  it('DATA: round trip through an echo target comes back as binary', T, async () => {
    const t = await openTunnel(srv.port, echo.target);
    await t.sendText('DATA:round trip');
    const ev = await t.next();
    assert.equal(ev.type, 'binary');
    const rest = ev.data.length < 10 ? await t.readBytes(10 - ev.data.length) : Buffer.alloc(0);
    assert.equal(Buffer.concat([ev.data, rest]).toString(), 'round trip');
    t.close();
  });
});
