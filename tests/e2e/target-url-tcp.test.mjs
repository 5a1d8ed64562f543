// target_url = tcp://host:port: every authenticated WebSocket is piped to one TCP service.
//
// - binary and text frames are written to the service as bytes (no CONNECT exchange: a
//   "CONNECT:..." text is just bytes), the service's bytes come back as binary frames, byte-exact
//   (random 256 KiB in several messages, mixed with text messages);
// - the service closing its side ends the WebSocket with close code 1000; the client closing
//   closes the service connection;
// - service down -> 502 {"error":"bad gateway"}; auth, admission, egress and metrics still apply.
// (The same behind a TLS listener: tls-listener.test.mjs. No TLS here: this file is in the
// valgrind subset, where TLS handshakes are slow.)
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServer } from './lib/server.mjs';
import { openWs } from './lib/client.mjs';
import {
  startEcho, startSource, startSink, closedPort, sha256,
} from './lib/targets.mjs';
import { METRICS_TOKEN, metricsText, metricValue } from './lib/admission.mjs';
import { sleep } from './lib/lifecycle.mjs';

const BAD_GATEWAY = { error: 'bad gateway' };

async function expectStatus(promise, status) {
  let err = null;
  try {
    const t = await promise;
    t.terminate();
  } catch (e) { err = e; }
  assert.ok(err, `the upgrade succeeded, expected ${status}`);
  assert.equal(err.status, status, `expected ${status}, got: ${err.message}`);
  return err;
}

describe('target_url tcp://', () => {
  let echo;
  const servers = [];
  const targets = [];
  before(async () => { echo = await startEcho(); targets.push(echo); });
  after(async () => {
    for (const s of servers) await s.stop();
    for (const t of targets) await t.close();
  });

  async function start(targetUrl, set = {}) {
    const srv = await startServer({
      workers: 2, set: { target_url: targetUrl, metrics_token: METRICS_TOKEN, log_level: 'info', ...set },
    });
    servers.push(srv);
    return srv;
  }

  it('binary and text messages reach a TCP echo as bytes and come back byte-exact as binary (256 KiB random)', { timeout: 30000 }, async () => {
    const srv = await start(`tcp://127.0.0.1:${echo.port}`);
    const before = echo.conns.length;
    const t = await openWs(srv.port);
    // the 101 echoes the token entry, the only subprotocol offered
    assert.equal(t.ws.protocol, srv.token);

    // random binary in messages of several sizes, with text messages between them
    const payload = randomBytes(256 * 1024);
    const sent = [];
    const sizes = [1, 1000, 4096, 65536, 70000, 100000];
    let off = 0;
    let i = 0;
    while (off < payload.length) {
      const n = Math.min(sizes[i % sizes.length], payload.length - off);
      const part = payload.subarray(off, off + n);
      off += n;
      await t.sendBinary(part);
      sent.push(part);
      if (i % 2 === 0) {
        const text = Buffer.from(`text #${i} héllo ✓ CONNECT:1.2.3.4:5|x\n`, 'utf8');
        await t.sendText(text);
        sent.push(text);
      }
      i++;
    }
    const want = Buffer.concat(sent);
    const got = await t.readBytes(want.length, 20000);
    assert.equal(got.length, want.length);
    assert.equal(sha256(got), sha256(want), 'the echoed bytes differ from what was sent');
    for (const ev of t.queue) assert.notEqual(ev.type, 'text', 'the service\'s bytes came back as a text frame');

    // exactly one service connection, and it saw the bytes as sent (no CONNECT reply, nothing added)
    const conn = await echo.waitConnection(before);
    assert.equal(echo.conns.length, before + 1);
    assert.equal(sha256(conn.data()), sha256(want), 'the service did not get the exact bytes');

    // the client closing: the service connection is closed too
    t.close(1000);
    const { code } = await t.waitClose(3000);
    assert.equal(code, 1000);
    await conn.waitEof(3000);
  });

  it('a first text message "CONNECT:..." is not a command: it reaches the service as bytes and no CONNECTED comes back', { timeout: 15000 }, async () => {
    const sink = await startSink();
    targets.push(sink);
    const srv = await start(`tcp://127.0.0.1:${sink.port}`);
    const echoConns = echo.conns.length;
    const t = await openWs(srv.port);
    await t.sendText(`CONNECT:${echo.target}`);
    const conn = await sink.waitConnection(0);
    const got = await conn.waitBytes(`CONNECT:${echo.target}`.length);
    assert.equal(got.toString('latin1'), `CONNECT:${echo.target}`);
    await sleep(200);
    assert.equal(t.queue.length, 0, `ech3 answered: ${t.describeQueue()}`);
    assert.equal(echo.conns.length, echoConns, 'ech3 connected to the CONNECT target');
    t.terminate();
  });

  it('the service closing its side ends the WebSocket with 1000 after its last bytes', { timeout: 15000 }, async () => {
    const last = randomBytes(200000);
    const src = await startSource(last, { delayMs: 100 });
    targets.push(src);
    const srv = await start(`tcp://127.0.0.1:${src.port}`);
    const t = await openWs(srv.port);
    const got = await t.readBytes(last.length, 10000);
    assert.equal(sha256(got), sha256(last));
    const { code } = await t.waitClose(5000);
    assert.equal(code, 1000, `close code ${code}, expected 1000`);

    // a service that closes at once, without a byte
    const quiet = await startSource(Buffer.alloc(0));
    targets.push(quiet);
    const srv2 = await start(`tcp://127.0.0.1:${quiet.port}`);
    const t2 = await openWs(srv2.port);
    assert.equal((await t2.waitClose(5000)).code, 1000);
    assert.equal(t2.queue.filter((e) => e.type !== 'close').length, 0);
  });

  it('service down -> 502 {"error":"bad gateway"}, the failure is logged and counted; the next client after it comes up is piped', { timeout: 20000 }, async () => {
    const port = await closedPort();
    const srv = await start(`tcp://127.0.0.1:${port}`);
    const err = await expectStatus(openWs(srv.port), 502);
    assert.deepEqual(JSON.parse(err.body), BAD_GATEWAY);
    assert.match(err.headers['content-type'] ?? '', /application\/json/);
    await srv.waitForLine(/target_url unavailable/, 3000);
    const m = await metricsText(srv.port);
    assert.ok(metricValue(m, 'ech3_tunnels_total{outcome="connect_error"}') >= 1, 'connect_error not counted');
    assert.equal(metricValue(m, 'ech3_tunnels_total{outcome="ok"}'), 0);

    // the service comes up on that port: now it works
    const up = await startEcho({ port });
    targets.push(up);
    const t = await openWs(srv.port);
    const buf = randomBytes(5000);
    await t.sendBinary(buf);
    assert.ok((await t.readBytes(buf.length)).equals(buf));
    t.terminate();
  });

  it('auth, egress, admission and metrics apply: no token -> 401 before the service is touched, egress.deny -> 502, max_conn -> 429, bytes counted', { timeout: 20000 }, async () => {
    const sink = await startSink();
    targets.push(sink);
    const srv = await start(`tcp://127.0.0.1:${sink.port}`, { max_conn: 1 });

    await expectStatus(openWs(srv.port, { token: null }), 401);
    await expectStatus(openWs(srv.port, { token: 'wrong-token' }), 401);
    await sleep(100);
    assert.equal(sink.conns.length, 0, 'the service was connected for an unauthenticated client');

    const t = await openWs(srv.port);
    await sink.waitConnection(0);
    const e429 = await expectStatus(openWs(srv.port), 429);
    assert.ok(e429.headers['retry-after'], 'no Retry-After on 429');
    assert.equal(sink.conns.length, 1, 'the service was connected for a client refused by admission');
    await t.sendBinary(randomBytes(12345));
    await sink.conns[0].waitBytes(12345);
    await sleep(100);
    const m = await metricsText(srv.port);
    assert.ok(metricValue(m, 'ech3_transmit_bytes_total{direction="up"}') >= 12345, 'bytes up not counted');
    assert.equal(metricValue(m, 'ech3_tunnels_total{outcome="ok"}'), 1);
    assert.ok(metricValue(m, 'ech3_tunnels_total{outcome="refused_auth"}') >= 2);
    assert.ok(metricValue(m, 'ech3_tunnels_total{outcome="refused_limit"}') >= 1);
    t.terminate();

    // egress.deny beats the test server's loopback allow
    const denied = await start(`tcp://127.0.0.1:${sink.port}`, { 'egress.deny': `127.0.0.1/32:${sink.port}` });
    const before = sink.conns.length;
    const e = await expectStatus(openWs(denied.port), 502);
    assert.deepEqual(JSON.parse(e.body), BAD_GATEWAY);
    await sleep(100);
    assert.equal(sink.conns.length, before, 'a denied target was connected');
    const dm = await metricsText(denied.port);
    assert.equal(metricValue(dm, 'ech3_tunnels_total{outcome="refused_egress"}'), 1, 'refused_egress not counted');
  });

  it('an invalid tcp:// target_url is refused at start', { timeout: 15000 }, async () => {
    for (const bad of ['tcp://127.0.0.1', 'tcp://127.0.0.1:5900/path', 'udp://127.0.0.1:5900', 'tcp://:5900']) {
      let err = null;
      try { servers.push(await startServer({ set: { target_url: bad } })); } catch (e) { err = e; }
      assert.ok(err, `target_url=${bad} was accepted`);
      assert.match(err.message, /code=1 .*[\s\S]*target_url/, `${bad}: ${err.message.slice(0, 300)}`);
    }
  });
});
