// Server pings (ping_interval / ping_timeout) and client pings.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import { rawRequest, upgradeRequest, waitSocketClosed } from './lib/raw.mjs';

const T = { timeout: 20000 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('keepalive pings', () => {
  let srv;
  let echo;
  before(async () => {
    srv = await startServer({ set: { ping_interval: 1, ping_timeout: 1 } });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); });

  it('server pings are answered automatically; an idle tunnel survives several intervals', T, async () => {
    const t = await openTunnel(srv.port, echo.target);
    await sleep(4500);
    assert.ok(t.open, `tunnel closed while idle: ${JSON.stringify(t.closeInfo)}`);
    assert.ok(t.pings >= 2, `expected >= 2 server pings in 4.5 s, got ${t.pings}`);
    await t.sendBinary(Buffer.from('still alive'));
    assert.equal((await t.readBytes(11)).toString(), 'still alive');
    t.close();
  });

  it('a client ping gets a pong', T, async () => {
    const t = await openTunnel(srv.port, echo.target);
    t.ws.ping(Buffer.from('hi'));
    const deadline = Date.now() + 3000;
    while (t.pongs < 1 && Date.now() < deadline) await sleep(20);
    assert.equal(t.pongs, 1);
    t.close();
  });

  it('a client that never answers pings is dropped after ping_interval + ping_timeout', T, async () => {
    const { request } = upgradeRequest();
    const res = await rawRequest(srv.port, request, { keepOpen: true });
    assert.equal(res.status, 101, res.raw.toString('latin1'));
    const sock = res.socket;
    assert.ok(sock, 'socket closed right after the 101');
    sock.on('error', () => {});
    // we read (and ignore) everything, never send a pong
    const ms = await waitSocketClosed(sock, 8000);
    sock.destroy();
    assert.ok(ms !== null, 'server did not drop a client that never answers pings within 8 s');
  });
});
