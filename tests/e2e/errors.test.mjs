// Errors: refused target, protocol misuse, bad ports.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openWs, openTunnel } from './lib/client.mjs';
import { startSink, startEcho, closedPort } from './lib/targets.mjs';

const T = { timeout: 15000 };

/** expect text ERROR:..., then close 1000 */
async function expectError(t, what) {
  const msg = await t.nextText(8000);
  assert.match(msg, /^ERROR:/, `${what}: expected ERROR:..., got ${JSON.stringify(msg)}`);
  const { code } = await t.waitClose(5000);
  assert.equal(code, 1000, `${what}: close code`);
  return msg;
}

describe('errors', () => {
  let srv;
  let sink;
  let echo;
  before(async () => { srv = await startServer(); sink = await startSink(); echo = await startEcho(); });
  after(async () => { await srv?.stop(); await sink?.close(); await echo?.close(); });

  it('connection refused → ERROR:<message>, close 1000', T, async () => {
    const port = await closedPort();
    const t = await openTunnel(srv.port, `127.0.0.1:${port}`, { first: 'x y', expect: null });
    const msg = await expectError(t, 'refused');
    assert.ok(msg.length > 'ERROR:'.length, 'ERROR carries a message');
  });

  it('binary before any CONNECT → ERROR, close', T, async () => {
    const t = await openWs(srv.port);
    await t.sendBinary(Buffer.from('too early'));
    await expectError(t, 'binary before CONNECT');
  });

  it('DATA: before any CONNECT → ERROR, close', T, async () => {
    const t = await openWs(srv.port);
    await t.sendText('DATA:too early');
    await expectError(t, 'DATA before CONNECT');
  });

  it('a second CONNECT → ERROR, the tunnel ends and the first target connection is closed', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    const c = await sink.waitConnection(n);
    await t.sendText(`CONNECT:${echo.target}`);
    await expectError(t, 'second CONNECT');
    await c.waitEof(5000);
  });

  it('an unknown text command → ERROR, the tunnel ends', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    const c = await sink.waitConnection(n);
    await t.sendText('HELLO:world');
    await expectError(t, 'unknown command');
    await c.waitEof(5000);
  });

  it('an unknown text command before CONNECT → ERROR, close', T, async () => {
    const t = await openWs(srv.port);
    await t.sendText('NOPE');
    await expectError(t, 'unknown command before CONNECT');
  });

  for (const target of ['127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:abc', '127.0.0.1', '127.0.0.1:', '127.0.0.1:-1', '127.0.0.1:99999999999', '']) {
    it(`bad target ${JSON.stringify(target)} → ERROR, close`, T, async () => {
      const t = await openTunnel(srv.port, target, { expect: null });
      await expectError(t, `CONNECT:${target}`);
    });
    it(`bad target ${JSON.stringify(target)} with first data → ERROR, close`, T, async () => {
      const t = await openTunnel(srv.port, target, { first: 'x y', expect: null });
      await expectError(t, `CONNECT:${target}|x y`);
    });
  }

  it('the server keeps serving after all of the above', T, async () => {
    const t = await openTunnel(srv.port, echo.target);
    await t.sendBinary(Buffer.from('alive'));
    assert.equal((await t.readBytes(5)).toString(), 'alive');
    t.close();
  });
});
