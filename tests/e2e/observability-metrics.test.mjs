// /metrics: the Prometheus text format (checked by promtool when it is installed), counters that
// equal exactly what the test did across several workers (and survive a worker's death), the
// endpoint's auth on the main listener, and the separate metrics_listen listener.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { startServer, recordSecret, sleep } from './lib/server.mjs';
import { openWs, openTunnel } from './lib/client.mjs';
import { startTarget, startEcho, closedPort } from './lib/targets.mjs';
import { rawRequest } from './lib/raw.mjs';
import { childPids, waitWorkers, waitFor } from './lib/lifecycle.mjs';

const T = { timeout: 60000 };

// ---- helpers ----

/** GET (or another method) on a plain HTTP endpoint; resolves { status, headers, body, raw }. */
async function http(port, pathname, { method = 'GET', headers = {}, timeout = 3000 } = {}) {
  const hl = Object.entries({ Host: '127.0.0.1', ...headers, Connection: 'close' }).map(([k, v]) => `${k}: ${v}`);
  const res = await rawRequest(port, `${method} ${pathname} HTTP/1.1\r\n${hl.join('\r\n')}\r\n\r\n`,
    { timeout, untilComplete: method !== 'HEAD' });
  if (res.status == null) throw new Error(`${method} ${pathname}: no HTTP answer (${res.error?.code ?? res.error ?? 'timeout'})`);
  return res;
}

async function scrape(port, token) {
  const res = await http(port, '/metrics', token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200, `/metrics answered ${res.status}: ${res.body.slice(0, 200)}`);
  return res;
}

/** Samples of a Prometheus text body: Map 'name{labels}' -> number; throws on a malformed line. */
function parseMetrics(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const r = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!r) throw new Error(`malformed metrics line: ${JSON.stringify(line)}`);
    m.set(r[1], Number(r[2]));
  }
  return m;
}

function val(m, key) {
  assert.ok(m.has(key), `metric ${key} is missing`);
  return m.get(key);
}

/** Pipe a body to `promtool check metrics`; null when promtool is not installed. */
function promtool(body) {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8', timeout: 20000 });
  if (r.error && r.error.code === 'ENOENT') return null;
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim(), error: r.error };
}

/** A port that was free a moment ago. */
async function freePort() {
  const s = net.createServer();
  await new Promise((r, j) => { s.once('error', j); s.listen(0, '127.0.0.1', r); });
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * A target that reads a header line "U<up>D<down>\n" (part of the client's upload), waits until
 * <up> bytes arrived in all, then writes <down> bytes and closes.
 */
function startSized() {
  return startTarget({
    onConnection: (c) => {
      c.socket.on('data', () => {
        if (c.answered) return;
        const all = c.data();
        const nl = all.indexOf(10);
        if (nl < 0) return;
        const h = /^U(\d+)D(\d+)$/.exec(all.subarray(0, nl).toString('latin1'));
        if (!h) { c.socket.destroy(); return; }
        if (all.length >= Number(h[1])) {
          c.answered = true;
          c.socket.end(Buffer.alloc(Number(h[2]), 0x64));
        }
      });
    },
  });
}

/**
 * One tunnel moving exactly `up` payload bytes to the target (the header as CONNECT first data,
 * then binary messages and a DATA: text message) and `down` bytes back. Resolves the client port.
 */
async function sizedTunnel(port, target, up, down) {
  const head = `U${up}D${down}\n`; // the header counts in up
  assert.ok(up >= head.length + 10);
  const t = await openTunnel(port, target, { first: head });
  const clientPort = t.ws._socket.localPort;
  let rest = up - head.length;
  const dataPart = Math.min(rest, 500);
  await t.sendText(`DATA:${'x'.repeat(dataPart)}`);
  rest -= dataPart;
  const reader = t.readUntilText(15000);
  for (let sent = 0; sent < rest;) {
    const n = Math.min(rest - sent, 50000);
    await t.sendBinary(randomBytes(n));
    sent += n;
  }
  const { bytes, text } = await reader;
  assert.equal(bytes.length, down, `tunnel from :${clientPort}: bytes down`);
  assert.equal(text, 'CLOSE');
  await t.waitClose(5000);
  return clientPort;
}

// ---- tests ----

describe('observability: /metrics counts what happened, across workers', () => {
  const METRICS_TOKEN = `mt-${randomBytes(12).toString('hex')}`;
  const N = 12;
  let srv;
  let sized;
  let echo;
  let expected;

  before(async () => {
    sized = await startSized();
    echo = await startEcho();
    srv = await startServer({
      workers: 3,
      set: {
        metrics_token: METRICS_TOKEN,
        max_conn: 500,
        log_level: 'info',
        // a loopback address the egress policy refuses (deny beats allow): no traffic leaves
        'egress.deny': '127.0.0.2/32',
      },
    });
    await waitWorkers(srv.pid, 3);
  });
  after(async () => { await srv?.stop(); await sized?.close(); await echo?.close(); });

  it('a fresh server reports zeros and promtool accepts the text', T, async (t) => {
    const res = await scrape(srv.port, METRICS_TOKEN);
    assert.match(res.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4\b/);
    const m = parseMetrics(res.body);
    assert.equal(val(m, 'ech3_tunnels_total{outcome="ok"}'), 0);
    assert.equal(val(m, 'ech3_tunnels_open'), 0);
    assert.equal(val(m, 'ech3_workers_alive'), 3);
    const p = promtool(res.body);
    if (p === null) { t.skip('promtool is not installed (Debian package prometheus; make test-deps installs it)'); return; }
    assert.equal(p.status, 0, `promtool check metrics failed:\n${p.out}`);
    assert.equal(p.out, '', `promtool check metrics reported lint problems:\n${p.out}`);
  });

  it(`${N} tunnels with known byte counts and 5 refusals are counted exactly`, T, async (t) => {
    // tunnel i: up = 1000*i + 700, down = 2000*i + 3 (one of them 200 KB up)
    const sizes = Array.from({ length: N }, (_, i) => ({ up: i === 5 ? 200000 : 1000 * i + 700, down: 2000 * i + 3 }));
    const ports = await Promise.all(sizes.map(({ up, down }) => sizedTunnel(srv.port, sized.target, up, down)));

    // refusals: 2 wrong tokens, 1 missing token, 1 egress refusal, 1 target connect error
    for (const token of ['wrong-token-1', 'wrong-token-2', null]) {
      await assert.rejects(openWs(srv.port, { token }), (e) => e.status === 401);
    }
    const eg = await openTunnel(srv.port, `127.0.0.2:${echo.port}`, { first: 'not-counted', expect: null });
    const egReply = await eg.nextText();
    assert.match(egReply, /^ERROR:egress refused\b/, egReply);
    await eg.waitClose(5000);
    const cp = await closedPort();
    const ce = await openTunnel(srv.port, `127.0.0.1:${cp}`, { first: 'not-counted-either', expect: null });
    const ceReply = await ce.nextText();
    assert.match(ceReply, /^ERROR:connect failed\b/, ceReply);
    await ce.waitClose(5000);
    assert.equal(echo.conns.length, 0, 'the egress-refused CONNECT reached the target');

    // every tunnel (the two refused after the upgrade too) has logged its access line
    const access = await srv.waitForLines(/ech3\[\d+\]: c=[0-9a-f]{8} access /, N + 2, 8000);
    const servedBy = new Set();
    for (const p of ports) {
      const line = access.find((l) => l.includes(`client=127.0.0.1:${p} `));
      assert.ok(line, `no access line for the tunnel from port ${p}`);
      servedBy.add(Number(/ech3\[(\d+)\]/.exec(line)[1]));
    }
    const workers = childPids(srv.pid);
    for (const pid of servedBy) assert.ok(workers.includes(pid), `access line from ${pid}, not a worker of ${srv.pid} (${workers})`);
    assert.ok(servedBy.size > 1, `all ${N} tunnels were served by one worker (${[...servedBy]}): SO_REUSEPORT spread expected`);
    t.diagnostic(`tunnels served by ${servedBy.size} workers`);

    expected = {
      'ech3_tunnels_total{outcome="ok"}': N,
      'ech3_tunnels_total{outcome="refused_auth"}': 3,
      'ech3_tunnels_total{outcome="refused_limit"}': 0,
      'ech3_tunnels_total{outcome="refused_rate"}': 0,
      'ech3_tunnels_total{outcome="refused_egress"}': 1,
      'ech3_tunnels_total{outcome="connect_error"}': 1,
      'ech3_connections_admitted_total': N + 2,
      'ech3_transmit_bytes_total{direction="up"}': sizes.reduce((a, s) => a + s.up, 0),
      'ech3_transmit_bytes_total{direction="down"}': sizes.reduce((a, s) => a + s.down, 0),
      'ech3_auth_failures_total{reason="invalid_token"}': 2,
      'ech3_auth_failures_total{reason="missing_token"}': 1,
      'ech3_reloads_total': 0,
      'ech3_admission_table_full_total': 0,
      'ech3_target_connect_seconds_count': N,
      'ech3_tunnel_duration_seconds_count': N,
      'ech3_tunnels_open': 0,
      'ech3_tunnels_max': 500,
      'ech3_workers_alive': 3,
    };
    // the slot of the last tunnel is released just after its access line: poll briefly
    let m;
    await waitFor(async () => { m = parseMetrics((await scrape(srv.port, METRICS_TOKEN)).body); return m.get('ech3_tunnels_open') === 0; },
      { timeout: 3000, what: 'ech3_tunnels_open 0' }).catch(() => {});
    const got = Object.fromEntries(Object.keys(expected).map((k) => [k, m.get(k)]));
    assert.deepEqual(got, expected);
    for (const [k, v] of m) {
      if (k.startsWith('ech3_auth_failures_total{') && !/invalid_token|missing_token/.test(k)) assert.equal(v, 0, k);
    }
    checkHistogram(m, 'ech3_target_connect_seconds', N);
    checkHistogram(m, 'ech3_tunnel_duration_seconds', N);
    const version = /ech3 (\S+) serving:/.exec(srv.lines.find((l) => / serving: /.test(l)))[1];
    assert.equal(val(m, `ech3_build_info{version="${version}"}`), 1);
  });

  it('promtool accepts the text with every counter non-zero', T, async (t) => {
    const res = await scrape(srv.port, METRICS_TOKEN);
    const p = promtool(res.body);
    if (p === null) { t.skip('promtool is not installed (Debian package prometheus; make test-deps installs it)'); return; }
    assert.equal(p.status, 0, `promtool check metrics failed:\n${p.out}`);
    assert.equal(p.out, '', `promtool check metrics reported lint problems:\n${p.out}`);
  });

  it('the counts survive the death of a worker that served tunnels', T, async () => {
    assert.ok(expected, 'depends on the previous test');
    const access = srv.lines.filter((l) => / access client=/.test(l));
    const victim = Number(/ech3\[(\d+)\]/.exec(access[0])[1]);
    process.kill(victim, 'SIGKILL');
    await srv.waitForLine(new RegExp(`\\(pid ${victim}\\) killed by signal 9`), 5000);
    await waitFor(() => childPids(srv.pid).length === 3 && !childPids(srv.pid).includes(victim),
      { timeout: 8000, what: 'the killed worker to be respawned' });
    let m;
    await waitFor(async () => { m = parseMetrics((await scrape(srv.port, METRICS_TOKEN)).body); return m.get('ech3_workers_alive') === 3; },
      { timeout: 5000, what: 'ech3_workers_alive 3 after the respawn' });
    const got = Object.fromEntries(Object.keys(expected).map((k) => [k, m.get(k)]));
    assert.deepEqual(got, expected, 'counters changed when a worker died');

    // and a new tunnel adds to them
    const before = m;
    await sizedTunnel(srv.port, sized.target, 5000, 7000);
    await waitFor(async () => { m = parseMetrics((await scrape(srv.port, METRICS_TOKEN)).body); return m.get('ech3_tunnels_open') === 0; },
      { timeout: 3000, what: 'ech3_tunnels_open 0' });
    assert.equal(m.get('ech3_tunnels_total{outcome="ok"}'), before.get('ech3_tunnels_total{outcome="ok"}') + 1);
    assert.equal(m.get('ech3_transmit_bytes_total{direction="up"}'), before.get('ech3_transmit_bytes_total{direction="up"}') + 5000);
    assert.equal(m.get('ech3_transmit_bytes_total{direction="down"}'), before.get('ech3_transmit_bytes_total{direction="down"}') + 7000);
  });
});

function checkHistogram(m, name, count) {
  const buckets = [...m].filter(([k]) => k.startsWith(`${name}_bucket{`))
    .map(([k, v]) => ({ le: /le="([^"]+)"/.exec(k)[1], v }));
  assert.ok(buckets.length >= 2, `${name}: no buckets`);
  assert.equal(buckets[buckets.length - 1].le, '+Inf', `${name}: last bucket is not +Inf`);
  for (let i = 1; i < buckets.length; i++) {
    assert.ok(buckets[i].v >= buckets[i - 1].v, `${name}: bucket le=${buckets[i].le} < le=${buckets[i - 1].le}`);
    if (buckets[i].le !== '+Inf') assert.ok(Number(buckets[i].le) > Number(buckets[i - 1].le), `${name}: bounds not increasing`);
  }
  assert.equal(buckets[buckets.length - 1].v, count, `${name}: +Inf bucket`);
  assert.equal(val(m, `${name}_count`), count, `${name}_count`);
  assert.ok(val(m, `${name}_sum`) >= 0, `${name}_sum`);
}

describe('observability: /metrics access', () => {
  const servers = [];
  after(async () => { for (const s of servers) await s.stop(); });

  it('off by default: 404 on the main listener; /healthz and /readyz answer without auth', T, async () => {
    const srv = await startServer({ workers: 1 });
    servers.push(srv);
    assert.equal((await http(srv.port, '/metrics')).status, 404);
    assert.equal((await http(srv.port, '/metrics', { headers: { Authorization: 'Bearer anything-at-all' } })).status, 404);
    assert.match(srv.lines.find((l) => / serving: /.test(l)), /\bmetrics=off\b/);
    const h = await http(srv.port, '/healthz');
    assert.equal(h.status, 200, h.body);
    const r = await http(srv.port, '/readyz');
    assert.equal(r.status, 200, r.body);
  });

  it('metrics_token: only Authorization: Bearer <token> gets 200, else 401', T, async () => {
    const tok = recordSecret(`mtok-${randomBytes(10).toString('hex')}`);
    const srv = await startServer({ workers: 2, set: { metrics_token: tok } });
    servers.push(srv);
    const none = await http(srv.port, '/metrics');
    assert.equal(none.status, 401);
    assert.match(none.headers['www-authenticate'] ?? '', /^Bearer\b/);
    for (const auth of ['Bearer wrong-token-value', `Bearer ${tok}x`, `Bearer ${tok.slice(0, -1)}`, `Basic ${Buffer.from(`u:${tok}`).toString('base64')}`, tok]) {
      const r = await http(srv.port, '/metrics', { headers: { Authorization: auth } });
      assert.equal(r.status, 401, `Authorization: ${auth.replace(tok, '<token>')} -> ${r.status}`);
    }
    const ok = await scrape(srv.port, tok);
    assert.match(ok.body, /^ech3_workers_alive 2$/m);
    assert.match(srv.lines.find((l) => / serving: /.test(l)), /\bmetrics=token\b/);
  });

  it('metrics_listen: /metrics without auth on its own port, nothing else there', T, async (t) => {
    const mport = await freePort();
    const srv = await startServer({ workers: 2, set: { metrics_listen: `127.0.0.1:${mport}` } });
    servers.push(srv);
    await srv.waitForLine(new RegExp(`listening on 127\\.0\\.0\\.1:${mport} \\(2 sockets, metrics only\\)`), 3000);
    assert.equal(srv.metricsPort, mport);
    assert.notEqual(srv.port, mport);
    const res = await scrape(mport);
    const m = parseMetrics(res.body);
    assert.equal(val(m, 'ech3_workers_alive'), 2);
    for (const p of ['/', '/healthz', '/readyz', '/metrics/x']) {
      assert.equal((await http(mport, p)).status, 404, `${p} on the metrics listener`);
    }
    // no tunnels on the metrics listener
    await assert.rejects(openWs(mport), (e) => e.status === 404);
    // the main listener still has no /metrics (no metrics_token)
    assert.equal((await http(srv.port, '/metrics')).status, 404);
    assert.match(srv.lines.find((l) => / serving: /.test(l)), new RegExp(`\\bmetrics=127\\.0\\.0\\.1:${mport}\\b`));
    const p = promtool(res.body);
    if (p === null) { t.skip('promtool is not installed'); return; }
    assert.equal(p.status, 0, p.out);
  });
  it('HEAD /metrics, /healthz and /readyz answer without a body', {
    ...T,
  }, async () => {
    const tok = recordSecret(`mtok-${randomBytes(10).toString('hex')}`);
    const srv = await startServer({ workers: 1, set: { metrics_token: tok } });
    servers.push(srv);
    for (const p of ['/healthz', '/readyz', '/metrics']) {
      const r = await http(srv.port, p, { method: 'HEAD', headers: { Authorization: `Bearer ${tok}` } });
      assert.equal(r.status, 200, `HEAD ${p}`);
      assert.equal(r.body, '', `HEAD ${p} carried a body of ${Buffer.byteLength(r.body)} bytes after the head (RFC 9110 9.3.2: none)`);
    }
  });
});

describe('observability: egress refusals are counted', () => {
  let srv;
  let echo;
  const tok = `mt-${randomBytes(8).toString('hex')}`;
  before(async () => {
    echo = await startEcho();
    // no ECH3_EGRESS_ALLOW: the default policy refuses loopback destinations
    srv = await startServer({ workers: 2, env: { ECH3_EGRESS_ALLOW: undefined }, set: { metrics_token: tok } });
  });
  after(async () => { await srv?.stop(); await echo?.close(); });

  it('CONNECT to loopback without loopback allowed: ERROR:egress refused, refused_egress 1', T, async () => {
    const t = await openTunnel(srv.port, echo.target, { first: 'hello', expect: null });
    const reply = await t.nextText();
    assert.match(reply, /^ERROR:egress refused: /, reply);
    await t.waitClose(5000);
    const line = await srv.waitForLine(/ access client=.* end="egress refused"/, 5000);
    assert.match(line, new RegExp(`target=127\\.0\\.0\\.1:${echo.port} up=0 down=0 `), line);
    await sleep(50);
    assert.equal(echo.conns.length, 0, 'the refused destination was contacted');
    const m = parseMetrics((await scrape(srv.port, tok)).body);
    assert.equal(val(m, 'ech3_tunnels_total{outcome="refused_egress"}'), 1);
    assert.equal(val(m, 'ech3_tunnels_total{outcome="ok"}'), 0);
    assert.equal(val(m, 'ech3_tunnels_total{outcome="connect_error"}'), 0);
    assert.equal(val(m, 'ech3_connections_admitted_total'), 1);
    assert.equal(val(m, 'ech3_transmit_bytes_total{direction="up"}'), 0);
    assert.equal(val(m, 'ech3_target_connect_seconds_count'), 0);
    assert.equal(val(m, 'ech3_tunnel_duration_seconds_count'), 0);
  });
});
