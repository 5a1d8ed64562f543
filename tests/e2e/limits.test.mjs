// max_message and max_header_bytes set small; settings precedence env < flags.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startSink } from './lib/targets.mjs';
import { rawRequest, upgradeRequest } from './lib/raw.mjs';

const T = { timeout: 15000 };

describe('limits', () => {
  let srv;
  let sink;
  before(async () => {
    // max_command must not exceed max_message (config check), so lower it too
    srv = await startServer({ set: { max_message: 4096, max_command: 1024, max_header_bytes: 1024 } });
    sink = await startSink();
  });
  after(async () => { await srv?.stop(); await sink?.close(); });

  it('a binary message of max_message bytes passes', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    await t.sendBinary(Buffer.alloc(4096, 1));
    const c = await sink.waitConnection(n);
    await c.waitBytes(4096);
    t.close();
  });

  it('a binary message above max_message → close 1009', T, async () => {
    const t = await openTunnel(srv.port, sink.target);
    await t.sendBinary(Buffer.alloc(8192, 1));
    const { code } = await t.waitClose(5000);
    assert.equal(code, 1009);
  });

  it('headers above max_header_bytes=1024 → 431; a normal request passes', T, async () => {
    const big = await rawRequest(srv.port, upgradeRequest({ extra: [`X-Pad: ${'p'.repeat(1500)}`] }).request);
    assert.equal(big.status, 431, big.raw.toString('latin1'));
    const ok = await rawRequest(srv.port, upgradeRequest().request);
    assert.equal(ok.status, 101, ok.raw.toString('latin1'));
  });
});

describe('settings precedence: flags override env', () => {
  let srv;
  let sink;
  before(async () => {
    srv = await startServer({ env: { ECH3_MAX_MESSAGE: '4096', ECH3_MAX_COMMAND: '1024' }, set: { max_message: 65536 } });
    sink = await startSink();
  });
  after(async () => { await srv?.stop(); await sink?.close(); });

  it('--set max_message=65536 wins over ECH3_MAX_MESSAGE=4096', T, async () => {
    const n = sink.conns.length;
    const t = await openTunnel(srv.port, sink.target);
    await t.sendBinary(Buffer.alloc(8192, 2));
    const c = await sink.waitConnection(n);
    await c.waitBytes(8192);
    assert.ok(t.open, `closed: ${JSON.stringify(t.closeInfo)}`);
    t.close();
  });
});

describe('settings from env: ECH3_MAX_MESSAGE', () => {
  let srv;
  let sink;
  before(async () => {
    srv = await startServer({ env: { ECH3_MAX_MESSAGE: '4096', ECH3_MAX_COMMAND: '1024' } });
    sink = await startSink();
  });
  after(async () => { await srv?.stop(); await sink?.close(); });

  it('ECH3_MAX_MESSAGE=4096 applies → 8192-byte message closes with 1009', T, async () => {
    const t = await openTunnel(srv.port, sink.target);
    await t.sendBinary(Buffer.alloc(8192, 3));
    const { code } = await t.waitClose(5000);
    assert.equal(code, 1009);
  });
});

describe('settings precedence: --set token overrides TOKEN env', () => {
  let srv;
  before(async () => { srv = await startServer({ token: 'env-token', set: { token: 'flag-token' } }); });
  after(async () => { await srv?.stop(); });

  it('flag token accepted, env token refused', T, async () => {
    const ok = await rawRequest(srv.port, upgradeRequest({ protocolHeader: 'flag-token' }).request);
    assert.equal(ok.status, 101);
    const no = await rawRequest(srv.port, upgradeRequest({ protocolHeader: 'env-token' }).request);
    assert.equal(no.status, 401);
  });
});
