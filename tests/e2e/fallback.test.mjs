// Fallback hosts: PRIP env, fallback_hosts setting, per-tunnel PYIP=.
// Fallbacks are tried with the TARGET's port only when the direct connect fails. Targets bind
// 127.0.0.2:P; the tunnel asks for 127.0.0.3:P, which refuses (nothing binds 127.0.0.3 or 0.0.0.0:P).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho, startSink, closedPort } from './lib/targets.mjs';

const T = { timeout: 20000 };

async function expectError(t, what) {
  const msg = await t.nextText(10000);
  assert.match(msg, /^ERROR:/, `${what}: expected ERROR:..., got ${JSON.stringify(msg)}`);
  const { code } = await t.waitClose(5000);
  assert.equal(code, 1000);
}

async function echoRoundTrip(t, s = 'via fallback') {
  await t.sendBinary(Buffer.from(s));
  assert.equal((await t.readBytes(s.length)).toString(), s);
}

describe('fallback via PRIP env', () => {
  let srv;
  let fb; // echo on 127.0.0.2:P
  before(async () => {
    fb = await startEcho({ host: '127.0.0.2' });
    srv = await startServer({ env: { PRIP: '127.0.0.2' } });
  });
  after(async () => { await srv?.stop(); await fb?.close(); });

  it('direct target refused → PRIP host with the same port takes over', T, async () => {
    const t = await openTunnel(srv.port, `127.0.0.3:${fb.port}`);
    await echoRoundTrip(t);
    assert.equal(fb.conns.length, 1);
    t.close();
  });

  it('the first data reaches the fallback host', T, async () => {
    const n = fb.conns.length;
    const t = await openTunnel(srv.port, `127.0.0.3:${fb.port}`, { first: 'first via fallback' });
    assert.equal((await t.readBytes(18)).toString(), 'first via fallback');
    assert.equal(fb.conns.length, n + 1);
    t.close();
  });

  it('PYIP= replaces the server list: PYIP host refuses → ERROR (PRIP not used)', T, async () => {
    const n = fb.conns.length;
    const t = await openTunnel(srv.port, `127.0.0.3:${fb.port}`, { first: 'zz z', suffix: '|PYIP=127.0.0.5', expect: null });
    await expectError(t, 'PYIP override with a refusing host');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(fb.conns.length, n, 'the PRIP host was contacted although PYIP replaced the list');
  });
});

describe('fallback via --set fallback_hosts, tried in order', () => {
  let srv;
  let fb;
  before(async () => {
    fb = await startEcho({ host: '127.0.0.2' });
    srv = await startServer({ set: { fallback_hosts: '127.0.0.9,127.0.0.2' } });
  });
  after(async () => { await srv?.stop(); await fb?.close(); });

  it('first fallback refuses, second takes over', T, async () => {
    const t = await openTunnel(srv.port, `127.0.0.3:${fb.port}`);
    await echoRoundTrip(t);
    t.close();
  });

  it('all fail → ERROR', T, async () => {
    // a port that neither the direct target nor any fallback listens on
    const port = await closedPort('127.0.0.2');
    const t = await openTunnel(srv.port, `127.0.0.3:${port}`, { expect: null });
    await expectError(t, 'all fallbacks refused');
  });
});

describe('fallback not used when the direct connect works', () => {
  let srv;
  let direct;
  let fb;
  before(async () => {
    // same port on 127.0.0.4 (direct) and 127.0.0.2 (fallback)
    for (let i = 0; i < 10 && !fb; i++) {
      direct = await startSink({ host: '127.0.0.4' });
      try {
        fb = await startSink({ host: '127.0.0.2', port: direct.port });
      } catch {
        await direct.close();
        direct = undefined;
      }
    }
    assert.ok(fb, 'could not bind the same port on 127.0.0.4 and 127.0.0.2');
    srv = await startServer({ env: { PRIP: '127.0.0.2' } });
  });
  after(async () => { await srv?.stop(); await direct?.close(); await fb?.close(); });

  it('connects to the direct target only', T, async () => {
    const t = await openTunnel(srv.port, `127.0.0.4:${direct.port}`, { first: 'direct!' });
    const c = await direct.waitConnection(0);
    assert.equal((await c.waitBytes(7)).toString(), 'direct!');
    assert.equal(fb.conns.length, 0);
    t.close();
  });
});

describe('PYIP= per tunnel', () => {
  let srv;
  let fb;
  before(async () => {
    fb = await startSink({ host: '127.0.0.2' });
    srv = await startServer({ env: { PRIP: '127.0.0.6' } }); // server list refuses
  });
  after(async () => { await srv?.stop(); await fb?.close(); });

  it('PYIP host takes over; first data excludes the |PYIP= field', T, async () => {
    const n = fb.conns.length;
    const t = await openTunnel(srv.port, `127.0.0.3:${fb.port}`, { first: 'hello there', suffix: '|PYIP=127.0.0.7,127.0.0.2' });
    const c = await fb.waitConnection(n);
    await t.sendBinary(Buffer.from('+more'));
    assert.equal((await c.waitBytes(16)).toString(), 'hello there+more');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(c.data().toString(), 'hello there+more');
    t.close();
  });

  it('PYIP with empty first data', T, async () => {
    const n = fb.conns.length;
    const t = await openTunnel(srv.port, `127.0.0.3:${fb.port}`, { first: '', suffix: '|PYIP=127.0.0.2' });
    const c = await fb.waitConnection(n);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(c.length, 0);
    t.close();
  });

  it('without PYIP the server list (refusing) applies → ERROR', T, async () => {
    const t = await openTunnel(srv.port, `127.0.0.3:${fb.port}`, { first: 'x y', expect: null });
    await expectError(t, 'server list refuses');
  });
});
