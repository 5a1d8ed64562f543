// Plain HTTP answers and handshake errors.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, DEFAULT_TOKEN } from './lib/server.mjs';
import { openWs, openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import { rawRequest, upgradeRequest, waitSocketClosed } from './lib/raw.mjs';

const T = { timeout: 15000 };
const show = (res) => `${res.statusLine}\n${res.raw.toString('latin1').slice(0, 500)}`;

describe('plain HTTP and handshake errors', () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(async () => { await srv?.stop(); });

  it('GET / without upgrade → 200 text/plain', T, async () => {
    const res = await rawRequest(srv.port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 200, show(res));
    assert.match(res.headers['content-type'] ?? '', /^text\/plain/i);
  });

  it('GET /other without upgrade → 404', T, async () => {
    const res = await rawRequest(srv.port, 'GET /other HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 404, show(res));
  });

  it('POST / without upgrade → 404', T, async () => {
    const res = await rawRequest(srv.port, 'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 404, show(res));
  });

  it('upgrade is accepted on any path', T, async () => {
    for (const p of ['/', '/some/path', '/?ed=2048', '/ws?x=1&y=2']) {
      const t = await openWs(srv.port, { path: p });
      assert.equal(t.ws.protocol, DEFAULT_TOKEN);
      t.close();
    }
  });

  it('request line garbage → 400', T, async () => {
    const res = await rawRequest(srv.port, 'THIS IS NOT HTTP\r\n\r\n');
    assert.equal(res.status, 400, show(res));
  });

  it('plain request with a header line without colon → 400', T, async () => {
    const res = await rawRequest(srv.port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nNoColonHere\r\n\r\n');
    assert.equal(res.status, 400, show(res));
  });

  it('upgrade request with a header line without colon → 400', T, async () => {
    const { request } = upgradeRequest({ extra: ['X-Broken-Header-Without-Colon'] });
    const res = await rawRequest(srv.port, request);
    assert.equal(res.status, 400, show(res));
  });

  it('upgrade without Sec-WebSocket-Key → 400', T, async () => {
    const { request } = upgradeRequest({ omit: ['sec-websocket-key'] });
    const res = await rawRequest(srv.port, request);
    assert.equal(res.status, 400, show(res));
  });

  it('wrong Sec-WebSocket-Version → 426 with Sec-WebSocket-Version: 13', T, async () => {
    const { request } = upgradeRequest({ version: '8' });
    const res = await rawRequest(srv.port, request);
    assert.equal(res.status, 426, show(res));
    assert.equal(res.headers['sec-websocket-version'], '13');
  });

  it('headers over max_header_bytes (default 8192) → 431', T, async () => {
    const { request } = upgradeRequest({ extra: [`X-Huge: ${'a'.repeat(9000)}`] });
    const res = await rawRequest(srv.port, request);
    assert.equal(res.status, 431, show(res));
  });

  it('a request delivered in small pieces still upgrades', T, async () => {
    const { request } = upgradeRequest();
    const pieces = [];
    for (let i = 0; i < request.length; i += 37) pieces.push(request.slice(i, i + 37));
    const res = await rawRequest(srv.port, pieces, { gapMs: 5 });
    assert.equal(res.status, 101, show(res));
  });
});

describe('handshake_timeout=1', () => {
  let srv;
  let echo;
  before(async () => {
    srv = await startServer({ set: { handshake_timeout: 1 } });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); });

  const connectRaw = (port) => new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.on('error', reject);
  });

  it('a client that sends nothing is closed after about 1 s', T, async () => {
    const s = await connectRaw(srv.port);
    s.on('error', () => {});
    const ms = await waitSocketClosed(s, 6000);
    s.destroy();
    assert.ok(ms !== null, 'server did not close a silent client within 6 s');
    assert.ok(ms >= 700, `closed too early: ${ms} ms`);
    assert.ok(ms <= 4000, `closed too late: ${ms} ms`);
  });

  it('a client that sends half a request and stops is closed after about 1 s', T, async () => {
    const s = await connectRaw(srv.port);
    s.on('error', () => {});
    s.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const ms = await waitSocketClosed(s, 6000);
    s.destroy();
    assert.ok(ms !== null, 'server did not close a stalled client within 6 s');
    assert.ok(ms >= 700, `closed too early: ${ms} ms`);
    assert.ok(ms <= 4000, `closed too late: ${ms} ms`);
  });

  it('an established, idle tunnel is not closed by the handshake timeout', T, async () => {
    const t = await openTunnel(srv.port, echo.target);
    await new Promise((r) => setTimeout(r, 2500));
    assert.ok(t.open, `WebSocket closed: ${JSON.stringify(t.closeInfo)}`);
    await t.sendBinary(Buffer.from('still here'));
    assert.equal((await t.readBytes(10)).toString(), 'still here');
    t.close();
  });
});
