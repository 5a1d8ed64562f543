// target_url = wss://host:port/path: the reverse proxy to a WebSocket backend over TLS, the
// backend's certificate verified against target_ca_file (or the system store).
//
// Backends: node https + `ws` (tests/e2e/lib/pki.mjs startWssBackend) with certificates from a
// test CA made at test time.
// - a backend with a cert from the test CA (SAN IP:127.0.0.1, DNS:localhost), target_url
//   wss://localhost:PORT/ and target_ca_file=ca.pem: relays (text, binary, ping/pong, close code);
//   ech3 sends SNI "localhost";
// - a self-signed (rogue) backend -> 502; the test CA's backend without target_ca_file (system
//   store) -> 502;
// - host name rules (OpenSSL's, as set up by worker/proxy.c): a host name in target_url is matched
//   against the certificate's DNS SANs, an IP address against its IP SANs only. So
//   wss://127.0.0.1 to a cert for DNS:localhost only -> 502, wss://localhost to a cert for
//   IP:127.0.0.1 only -> 502, and a cert for another name (DNS:backend.example) -> 502.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { startServer, DEFAULT_TOKEN } from './lib/server.mjs';
import { openWs } from './lib/client.mjs';
import { sha256 } from './lib/targets.mjs';
import { sleep } from './lib/lifecycle.mjs';
import { makePki, startWsBackend, startWssBackend } from './lib/pki.mjs';

const BAD_GATEWAY = { error: 'bad gateway' };

async function upgradeOutcome(port, opts) {
  try {
    const t = await openWs(port, opts);
    return { status: 101, tunnel: t };
  } catch (e) {
    return { status: e.status ?? null, body: e.body, error: e.message };
  }
}

async function nextMessage(t, type, ms = 10000) {
  const ev = await t.next(ms);
  assert.notEqual(ev.type, 'close', `closed (code ${ev.code}) while waiting for a ${type} message`);
  assert.equal(ev.type, type);
  return ev.data;
}

describe('target_url wss:// (reverse proxy over TLS)', () => {
  let pki;
  const servers = [];
  const backends = [];
  let good; let rogue; let dnsOnly; let ipOnly; let otherName;

  before(async () => {
    pki = makePki();
    good = await startWssBackend(pki.issue('backend'), { chooseProtocol: (o) => (o.includes('chat') ? 'chat' : undefined) });
    rogue = await startWssBackend(pki.selfSigned('rogue'));
    dnsOnly = await startWssBackend(pki.issue('dns-only', { san: 'DNS:localhost' }));
    ipOnly = await startWssBackend(pki.issue('ip-only', { san: 'IP:127.0.0.1', cn: '127.0.0.1' }));
    otherName = await startWssBackend(pki.issue('other-name', { san: 'DNS:backend.example', cn: 'backend.example' }));
    backends.push(good, rogue, dnsOnly, ipOnly, otherName);
  });
  after(async () => {
    for (const s of servers) await s.stop();
    for (const b of backends) await b.close();
    pki?.cleanup();
  });

  async function start(targetUrl, set = {}) {
    const srv = await startServer({ set: { target_url: targetUrl, log_level: 'info', ...set } });
    servers.push(srv);
    return srv;
  }

  /** Outcome of one client through ech3 to `backend` at target_url; checks nothing. */
  async function through(backend, host, { ca = true } = {}) {
    const srv = await start(`wss://${host}:${backend.port}/`, ca ? { target_ca_file: pki.ca.cert } : {});
    const r = await upgradeOutcome(srv.port);
    r.srv = srv;
    if (r.tunnel) r.tunnel.terminate();
    return r;
  }

  it('a backend with a certificate from target_ca_file relays text, binary, pings and close codes; SNI is the host name', { timeout: 30000 }, async () => {
    const srv = await start(`wss://localhost:${good.port}/secure/path`, { target_ca_file: pki.ca.cert });
    const n0 = good.conns.length;
    const t = await openWs(srv.port, { protocols: [DEFAULT_TOKEN, 'chat'] });
    const conn = await good.waitConnection(n0);
    assert.equal(conn.url, '/secure/path');
    assert.deepEqual(conn.offered, ['chat']);
    assert.equal(t.ws.protocol, 'chat');
    assert.ok(good.tls.servernames.includes('localhost'), `SNI seen by the backend: ${JSON.stringify(good.tls.servernames)}`);

    await t.sendText(Buffer.from('über TLS ✓', 'utf8'));
    assert.equal((await nextMessage(t, 'text')).toString('utf8'), 'über TLS ✓');
    const big = randomBytes(1024 * 1024);
    await t.sendBinary(big);
    const got = await nextMessage(t, 'binary', 20000);
    assert.equal(got.length, big.length);
    assert.equal(sha256(got), sha256(big));

    const pong = new Promise((r) => t.ws.once('pong', r));
    t.ws.ping(Buffer.from('p1'));
    assert.equal((await pong).toString(), 'backend:p1');

    await t.sendText('close-me:4001');
    assert.deepEqual(await t.waitClose(5000), { code: 4001, reason: 'bye' });
  });

  it('wss://127.0.0.1 to a certificate with IP:127.0.0.1 in its SAN relays too', { timeout: 15000 }, async () => {
    const r = await through(good, '127.0.0.1');
    assert.equal(r.status, 101, `expected 101: ${r.error} ${r.body ?? ''}`);
    const r2 = await through(ipOnly, '127.0.0.1');
    assert.equal(r2.status, 101, `IP-only certificate at 127.0.0.1: ${r2.error} ${r2.body ?? ''}`);
  });

  it('a self-signed backend -> 502 bad gateway, with the verification error logged', { timeout: 15000 }, async () => {
    const r = await through(rogue, 'localhost');
    assert.equal(r.status, 502, `rogue backend: ${r.error}`);
    assert.deepEqual(JSON.parse(r.body), BAD_GATEWAY);
    const line = await r.srv.waitForLine(/target_url unavailable/, 3000);
    assert.match(line, /self[- ]signed|certificate/i, `the log does not say why: ${line}`);
    assert.equal(rogue.conns.length, 0, 'the rogue backend got a WebSocket');
  });

  it('the test CA\'s backend without target_ca_file (system store only) -> 502', { timeout: 15000 }, async () => {
    const r = await through(good, 'localhost', { ca: false });
    assert.equal(r.status, 502, `no CA file: ${r.error}`);
    assert.deepEqual(JSON.parse(r.body), BAD_GATEWAY);
  });

  it('host name checks: an IP is matched against IP SANs only, a name against DNS SANs; a mismatch -> 502', { timeout: 30000 }, async () => {
    // cert for DNS:localhost only, target_url host 127.0.0.1: OpenSSL compares the IP with the
    // certificate's iPAddress SANs (there are none), never with a DNS name or the CN -> refused
    const a = await through(dnsOnly, '127.0.0.1');
    assert.equal(a.status, 502, `wss://127.0.0.1 to a DNS:localhost-only certificate: ${a.status} ${a.error}`);
    // and the same backend by its name works
    const b = await through(dnsOnly, 'localhost');
    assert.equal(b.status, 101, `wss://localhost to a DNS:localhost certificate: ${b.error} ${b.body ?? ''}`);
    // cert for IP:127.0.0.1 only (CN=127.0.0.1), target_url host localhost: no DNS SAN matches;
    // with a SAN present the CN is not consulted -> refused
    const c = await through(ipOnly, 'localhost');
    assert.equal(c.status, 502, `wss://localhost to an IP-only certificate: ${c.status} ${c.error}`);
    // a CA-signed certificate for another name -> refused
    const d = await through(otherName, 'localhost');
    assert.equal(d.status, 502, `wss://localhost to a certificate for backend.example: ${d.status} ${d.error}`);
    const line = await d.srv.waitForLine(/target_url unavailable/, 3000);
    assert.match(line, /hostname mismatch|host|certificate/i, line);
  });

  it('a backend that never speaks TLS -> 502 after connect_timeout=1; an established wss tunnel idle for longer keeps working', { timeout: 20000 }, async () => {
    const sockets = new Set();
    const silent = net.createServer((sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.on('error', () => {});
    });
    await new Promise((r) => silent.listen(0, '127.0.0.1', r));
    backends.push({ close: () => new Promise((r) => { for (const x of sockets) x.destroy(); silent.close(() => r()); }) });
    const s = await start(`wss://127.0.0.1:${silent.address().port}/`, { target_ca_file: pki.ca.cert, connect_timeout: 1 });
    const t0 = Date.now();
    const r = await upgradeOutcome(s.port, { timeout: 8000 });
    const ms = Date.now() - t0;
    assert.equal(r.status, 502, `silent TLS backend: ${r.error}`);
    assert.ok(ms >= 800 && ms < 4000, `502 after ${ms} ms with connect_timeout=1`);

    // the handshake's socket timeouts must not cut an idle tunnel later
    const s2 = await start(`wss://localhost:${good.port}/`, { target_ca_file: pki.ca.cert, connect_timeout: 1 });
    const t = await openWs(s2.port);
    await sleep(2500);
    await t.sendBinary(Buffer.from('after idle'));
    assert.equal((await nextMessage(t, 'binary')).toString(), 'after idle');
    await sleep(1500);
    const big = randomBytes(4 * 1024 * 1024);
    await t.sendBinary(big);
    assert.equal(sha256(await nextMessage(t, 'binary', 20000)), sha256(big));
    t.terminate();
  });

  it('a plain ws:// target_url to a TLS backend, and wss:// to a plain backend, fail with 502', { timeout: 15000 }, async () => {
    const s1 = await start(`ws://127.0.0.1:${good.port}/`);
    const r1 = await upgradeOutcome(s1.port);
    assert.equal(r1.status, 502, `ws:// to a TLS backend: ${r1.error}`);
    r1.tunnel?.terminate();
    const plain = await startWsBackend();
    backends.push(plain);
    const s2 = await start(`wss://127.0.0.1:${plain.port}/`, { target_ca_file: pki.ca.cert });
    const r2 = await upgradeOutcome(s2.port);
    assert.equal(r2.status, 502, `wss:// to a plain backend: ${r2.error}`);
    r2.tunnel?.terminate();
  });
});
