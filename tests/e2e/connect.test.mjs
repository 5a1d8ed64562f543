// CONNECT with and without first data; ordering of early binary data.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho, startSink } from './lib/targets.mjs';

const T = { timeout: 15000 };

describe('CONNECT', () => {
  let srv;
  let echo;
  let sink;
  before(async () => {
    srv = await startServer();
    echo = await startEcho();
    sink = await startSink();
  });
  after(async () => { await srv?.stop(); await echo?.close(); await sink?.close(); });

  it('CONNECT:<host>:<port> (no "|") → CONNECTED, binary echoed', T, async () => {
    const t = await openTunnel(srv.port, echo.target);
    const msg = Buffer.from('hello through the tunnel');
    await t.sendBinary(msg);
    assert.deepEqual(await t.readBytes(msg.length), msg);
    t.close();
  });

  it('CONNECT:<host>:<port>| (empty first data) → CONNECTED, nothing written', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target, { first: '' });
    const c = await sink.waitConnection(n);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(c.length, 0, 'target received bytes for an empty first data');
    await t.sendBinary(Buffer.from('after'));
    assert.equal((await c.waitBytes(5)).toString(), 'after');
    t.close();
  });

  it('CONNECT with first data: the target receives it first, before later binary data', T, async () => {
    const n = sink.conns.length;
    const first = 'GET /first HTTP/1.1\r\nHost: example\r\n\r\n';
    const t = await openTunnel(srv.port, sink.target, { first });
    const c = await sink.waitConnection(n);
    await t.sendBinary(Buffer.from('BODY'));
    const got = await c.waitBytes(first.length + 4);
    assert.equal(got.toString('latin1'), `${first}BODY`);
    t.close();
  });

  it('CONNECTED is sent after the first data was written', T, async () => {
    const n = sink.conns.length;
    const first = 'first-data-written-before-CONNECTED';
    await openTunnel(srv.port, sink.target, { first }).then((t) => { setTimeout(() => t.close(), 300); });
    const c = await sink.waitConnection(n);
    // By the time CONNECTED reached us the bytes were written to the socket; give loopback a moment.
    assert.equal((await c.waitBytes(first.length, 1000)).toString(), first);
  });

  it('first data may contain "|"', T, async () => {
    const n = sink.conns.length;
    const first = 'a|b||c d|PYIP';
    const t = await openTunnel(srv.port, sink.target, { first });
    const c = await sink.waitConnection(n);
    assert.equal((await c.waitBytes(first.length)).toString(), first);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(c.data().toString(), first);
    t.close();
  });

  it('a "|PYIP=" field that is not the last field is first data', T, async () => {
    const n = sink.conns.length;
    const first = 'x y|PYIP=127.0.0.9|tail';
    const t = await openTunnel(srv.port, sink.target, { first });
    const c = await sink.waitConnection(n);
    assert.equal((await c.waitBytes(first.length)).toString(), first);
    t.close();
  });

  it('binary sent after CONNECT but before CONNECTED is relayed in order', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target, { first: 'one;', expect: null });
    await t.sendBinary(Buffer.from('two;'));
    await t.sendBinary(Buffer.from('three;'));
    assert.equal(await t.nextText(8000), 'CONNECTED');
    await t.sendBinary(Buffer.from('four'));
    const c = await sink.waitConnection(n);
    assert.equal((await c.waitBytes(18)).toString(), 'one;two;three;four');
    t.close();
  });

  it('target bytes arrive at the client as binary frames', T, async () => {
    const t = await openTunnel(srv.port, echo.target);
    await t.sendBinary(Buffer.from('abc'));
    const ev = await t.next();
    assert.equal(ev.type, 'binary');
    t.close();
  });
});
