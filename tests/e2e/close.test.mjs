// Ending tunnels: CLOSE from the client, client drops, target closes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startSink, startSource, startEcho, startTarget } from './lib/targets.mjs';
import { rawWs, wsFrame } from './lib/raw.mjs';

const T = { timeout: 15000 };

describe('tunnel end', () => {
  let srv;
  let sink;
  let source;
  let echo;
  let quick;
  before(async () => {
    srv = await startServer();
    sink = await startSink();
    source = await startSource(Buffer.from('goodbye from the target'));
    echo = await startEcho();
    quick = await startTarget({ onConnection: (c) => c.socket.end() });
  });
  after(async () => {
    await srv?.stop();
    for (const x of [sink, source, echo, quick]) await x?.close();
  });

  it('text CLOSE from the client: target sees EOF, server closes the WebSocket with 1000', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    await t.sendBinary(Buffer.from('last words'));
    await t.sendText('CLOSE');
    const c = await sink.waitConnection(n);
    await c.waitEof(5000);
    assert.equal(c.data().toString(), 'last words');
    const { code } = await t.waitClose(5000);
    assert.equal(code, 1000);
  });

  it('text CLOSE then TCP dropped without a close frame: target sees EOF', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    await t.sendBinary(Buffer.from('bye'));
    await t.sendText('CLOSE');
    t.terminate();
    const c = await sink.waitConnection(n);
    await c.waitEof(5000);
    assert.equal(c.data().toString(), 'bye');
  });

  it('binary + DATA: + text CLOSE in one TCP write: all bytes reach the target before EOF', T, async () => {
    const n = sink.conns.length;
    const w = await rawWs(srv.port);
    await w.write(wsFrame(1, `CONNECT:${sink.target}`));
    await w.waitText('CONNECTED');
    await w.write(Buffer.concat([wsFrame(2, 'bin;'), wsFrame(1, 'DATA:text;'), wsFrame(2, 'last words'), wsFrame(1, 'CLOSE')]));
    const c = await sink.waitConnection(n);
    await c.waitEof(5000);
    assert.equal(c.data().toString(), 'bin;text;last words');
    const cf = await w.waitFrame((f) => f.op === 8, 5000);
    assert.equal(cf.payload.readUInt16BE(0), 1000);
    w.destroy();
  });

  it('CONNECT + binary + CLOSE in one TCP write: first data and binary reach the target', T, async () => {
    const n = sink.conns.length;
    const w = await rawWs(srv.port);
    await w.write(Buffer.concat([wsFrame(1, `CONNECT:${sink.target}|first;`), wsFrame(2, 'early;'), wsFrame(1, 'CLOSE')]));
    const c = await sink.waitConnection(n);
    await c.waitEof(5000);
    assert.equal(c.data().toString(), 'first;early;');
    w.destroy();
  });

  it('client close frame (no CLOSE text): target sees EOF', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    const c = await sink.waitConnection(n);
    t.close(1000);
    await c.waitEof(5000);
    const { code } = await t.waitClose(5000);
    assert.equal(code, 1000);
  });

  it('client TCP dropped abruptly: target connection is closed', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    const c = await sink.waitConnection(n);
    t.terminate();
    await c.waitClosed(5000);
  });

  it('target closes after sending: client gets the bytes, text CLOSE, then close 1000', T, async () => {
    const t = await openTunnel(srv.port, source.target);
    const { bytes, text } = await t.readUntilText(5000);
    assert.equal(bytes.toString(), 'goodbye from the target');
    assert.equal(text, 'CLOSE');
    const { code } = await t.waitClose(5000);
    assert.equal(code, 1000);
  });

  it('target closes right after accepting: CONNECTED, CLOSE, close 1000', T, async () => {
    const t = await openTunnel(srv.port, quick.target);
    assert.equal(await t.nextText(5000), 'CLOSE');
    const { code } = await t.waitClose(5000);
    assert.equal(code, 1000);
  });

  it('the server keeps serving after all of the above', T, async () => {
    const t = await openTunnel(srv.port, echo.target);
    await t.sendBinary(Buffer.from('alive'));
    assert.equal((await t.readBytes(5)).toString(), 'alive');
    t.close();
  });
});
