// Token authentication on the upgrade (Sec-WebSocket-Protocol).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, DEFAULT_TOKEN } from './lib/server.mjs';
import { openWs, openTunnel } from './lib/client.mjs';
import { rawRequest, upgradeRequest, acceptFor } from './lib/raw.mjs';
import { startEcho } from './lib/targets.mjs';

const T = { timeout: 15000 };

function assert401(res) {
  assert.equal(res.status, 401, `expected 401, got ${res.statusLine}\n${res.raw.toString('latin1')}`);
  assert.match(res.headers['content-type'] ?? '', /^application\/json/i, 'Content-Type of the 401');
  assert.deepEqual(JSON.parse(res.body), { error: 'unauthorized' });
}

describe('auth: static TOKEN', () => {
  let srv;
  let echo;
  before(async () => {
    srv = await startServer();
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); });

  it('accepts Sec-WebSocket-Protocol equal to the token and echoes it in the 101', T, async () => {
    const t = await openWs(srv.port, { protocols: [DEFAULT_TOKEN] });
    assert.equal(t.ws.protocol, DEFAULT_TOKEN);
    t.close();
  });

  it('accepts the token as one comma-separated entry and echoes that entry', T, async () => {
    const t = await openWs(srv.port, { protocols: ['first-proto', DEFAULT_TOKEN, 'last-proto'] });
    assert.equal(t.ws.protocol, DEFAULT_TOKEN);
    t.close();
  });

  it('raw 101: correct Sec-WebSocket-Accept and echoed protocol', T, async () => {
    const { request, key } = upgradeRequest({ protocolHeader: `x-a, ${DEFAULT_TOKEN}` });
    const res = await rawRequest(srv.port, request);
    assert.equal(res.status, 101, res.raw.toString('latin1'));
    assert.equal(res.headers['sec-websocket-accept'], acceptFor(key));
    assert.equal(res.headers['sec-websocket-protocol'], DEFAULT_TOKEN);
    assert.match(res.headers.upgrade ?? '', /^websocket$/i);
  });

  it('refuses a wrong token: 401 with {"error":"unauthorized"}', T, async () => {
    const res = await rawRequest(srv.port, upgradeRequest({ protocolHeader: 'not-the-token' }).request);
    assert401(res);
  });

  it('refuses a request without Sec-WebSocket-Protocol: 401', T, async () => {
    const res = await rawRequest(srv.port, upgradeRequest({ protocolHeader: null }).request);
    assert401(res);
  });

  it('refuses prefixes / extensions of the token', T, async () => {
    for (const p of [DEFAULT_TOKEN.slice(0, -1), `${DEFAULT_TOKEN}x`, `x${DEFAULT_TOKEN}`]) {
      const res = await rawRequest(srv.port, upgradeRequest({ protocolHeader: p }).request);
      assert401(res);
    }
  });

  it('ws client with a wrong token gets 401', T, async () => {
    await assert.rejects(openWs(srv.port, { protocols: ['wrong'] }), (e) => {
      assert.equal(e.status, 401);
      assert.deepEqual(JSON.parse(e.body), { error: 'unauthorized' });
      return true;
    });
  });

  it('an authenticated tunnel works', T, async () => {
    const t = await openTunnel(srv.port, echo.target);
    await t.sendBinary(Buffer.from('ping-pong'));
    assert.equal((await t.readBytes(9)).toString(), 'ping-pong');
    t.close();
  });
});

describe('auth: token containing a comma matches the whole header', () => {
  const TOKEN = 'alpha, beta';
  let srv;
  before(async () => { srv = await startServer({ token: TOKEN }); });
  after(async () => { await srv?.stop(); });

  it('whole header equal to the token → 101 echoing the whole value', T, async () => {
    const { request, key } = upgradeRequest({ protocolHeader: TOKEN });
    const res = await rawRequest(srv.port, request);
    assert.equal(res.status, 101, res.raw.toString('latin1'));
    assert.equal(res.headers['sec-websocket-accept'], acceptFor(key));
    assert.equal(res.headers['sec-websocket-protocol'], TOKEN);
  });

  it('only a part of it → 401', T, async () => {
    for (const p of ['alpha', 'beta', 'alpha,beta']) {
      const res = await rawRequest(srv.port, upgradeRequest({ protocolHeader: p }).request);
      assert401(res);
    }
  });
});

describe('auth: ECH3_ALLOW_ANONYMOUS=1 without a token', () => {
  let srv;
  let echo;
  before(async () => {
    srv = await startServer({ token: null, env: { ECH3_ALLOW_ANONYMOUS: '1' } });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); });

  it('anyone connects, without a subprotocol', T, async () => {
    const t = await openTunnel(srv.port, echo.target, { token: null });
    await t.sendBinary(Buffer.from('anon'));
    assert.equal((await t.readBytes(4)).toString(), 'anon');
    t.close();
  });
});

describe('auth: no token and anonymous not allowed → generated token', () => {
  let srv;
  before(async () => { srv = await startServer({ token: null, workers: 2 }); });
  after(async () => { await srv?.stop(); });

  it('a client without a subprotocol is refused with 401', T, async () => {
    const res = await rawRequest(srv.port, upgradeRequest({ protocolHeader: null }).request);
    assert401(res);
  });

  it('the generated token is printed once on stderr and is accepted by every worker', T, async () => {
    // Candidate tokens: long word-like strings anywhere on stderr (the format is not fixed).
    const cands = new Set();
    for (const l of srv.lines) {
      for (const m of l.matchAll(/[A-Za-z0-9_\-+/.~=]{16,}/g)) cands.add(m[0].replace(/^token=/, ''));
    }
    let found = null;
    for (const c of cands) {
      try {
        const t = await openWs(srv.port, { protocols: [c] });
        t.close();
        found = c;
        break;
      } catch { /* not this one */ }
    }
    assert.ok(found, `no accepted token found on stderr:\n${srv.lines.join('\n')}`);
    assert.equal(srv.lines.filter((l) => l.includes(found)).length, 1, 'token printed exactly once');
    for (let i = 0; i < 12; i++) {
      const t = await openWs(srv.port, { protocols: [found] });
      assert.equal(t.ws.protocol, found);
      t.close();
    }
  });
});
