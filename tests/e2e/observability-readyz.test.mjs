// /healthz and /readyz: readiness flips to 503 at max_conn and back when a tunnel closes; a
// graceful stop stops accepting (a refused connect counts as not ready) while open tunnels finish;
// a reload keeps the server ready (the old generation drains, the new one serves).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServer } from './lib/server.mjs';
import { openWs, openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import { rawRequest } from './lib/raw.mjs';
import {
  echoRound, childPids, waitWorkers, waitFor, countLines,
} from './lib/lifecycle.mjs';

const T = { timeout: 30000 };

/** GET pathname; resolves { status, body } or { status: null, error } when the connect fails. */
async function get(port, pathname, headers = {}) {
  const hl = Object.entries({ Host: '127.0.0.1', ...headers, Connection: 'close' }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  const res = await rawRequest(port, `GET ${pathname} HTTP/1.1\r\n${hl}\r\n`, { timeout: 3000 });
  return { status: res.status, body: res.body, error: res.error?.code ?? res.error?.message ?? (res.timedOut ? 'timeout' : null) };
}

/** n requests in a row (they spread over the workers); resolves the statuses. */
async function statuses(port, pathname, n = 6) {
  const out = [];
  for (let i = 0; i < n; i++) out.push((await get(port, pathname)).status);
  return out;
}

async function waitStatus(port, pathname, want, timeout = 5000) {
  let last;
  await waitFor(async () => {
    last = await statuses(port, pathname, 4);
    return last.every((s) => s === want);
  }, { timeout, every: 50, what: `${pathname} to answer ${want} (last: ${last})` });
}

describe('observability: /readyz and /healthz', () => {
  const servers = [];
  let echo;
  after(async () => { for (const s of servers) await s.stop(); await echo?.close(); });

  it('/readyz is 503 while open tunnels == max_conn, 200 again after one closes', T, async () => {
    echo ??= await startEcho();
    const srv = await startServer({ workers: 2, set: { max_conn: 2 } });
    servers.push(srv);
    await waitWorkers(srv.pid, 2);
    assert.deepEqual(await statuses(srv.port, '/readyz'), Array(6).fill(200));
    assert.deepEqual(await statuses(srv.port, '/healthz'), Array(6).fill(200));

    const a = await openTunnel(srv.port, echo.target);
    assert.deepEqual(await statuses(srv.port, '/readyz'), Array(6).fill(200), 'one of two slots used');
    const b = await openTunnel(srv.port, echo.target);
    const full = await statuses(srv.port, '/readyz', 8);
    assert.deepEqual(full, Array(8).fill(503), `at capacity, every worker says not ready: ${full}`);
    const body = (await get(srv.port, '/readyz')).body;
    assert.match(body, /not ready/);
    // liveness is not readiness
    assert.deepEqual(await statuses(srv.port, '/healthz'), Array(6).fill(200));
    // and a third tunnel is indeed refused
    await assert.rejects(openWs(srv.port), (e) => e.status === 429);

    await a.sendText('CLOSE');
    await a.waitClose(5000);
    await waitStatus(srv.port, '/readyz', 200, 3000);
    assert.equal(await echoRound(b, 1000), 0, 'the other tunnel still relays');
    b.close();
    await b.waitClose(5000);
  });

  it('graceful stop (SIGTERM) with a tunnel open: new connections refused or 503, the tunnel keeps relaying', T, async (t2) => {
    echo ??= await startEcho();
    const srv = await startServer({ workers: 2, set: { shutdown_timeout: 5 } });
    servers.push(srv);
    await waitWorkers(srv.pid, 2);
    const t = await openTunnel(srv.port, echo.target);
    assert.equal((await get(srv.port, '/readyz')).status, 200);

    process.kill(srv.pid, 'SIGTERM');
    await srv.waitForLine(/graceful stop: draining up to 5 s/, 3000);
    await srv.waitForLines(/worker \d+ draining: /, 2, 3000);
    const seen = [];
    for (let i = 0; i < 6; i++) {
      const r = await get(srv.port, '/readyz');
      seen.push(r.status ?? r.error);
      assert.ok(r.status === null || r.status === 503,
        `/readyz during the drain: expected a refused connection or 503, got ${r.status} ${r.body}`);
    }
    assert.equal(await echoRound(t, 2000), 0, 'the open tunnel relays during the drain');
    t.close();
    await t.waitClose(5000);
    let timer;
    const ex = await Promise.race([srv.exitPromise, new Promise((r) => { timer = setTimeout(r, 7000, null); })]);
    clearTimeout(timer);
    assert.ok(ex, 'the server did not exit after its last tunnel closed');
    assert.equal(ex.code, 0);
    t2.diagnostic(`/readyz during the drain: ${seen.join(', ')}`);
  });

  it('reload (SIGHUP) with a tunnel on the old generation: /readyz stays 200, both generations serve', T, async () => {
    echo ??= await startEcho();
    const tok = `mt-${randomBytes(8).toString('hex')}`;
    const srv = await startServer({ workers: 2, set: { drain_timeout: 30, metrics_token: tok } });
    servers.push(srv);
    const gen1 = await waitWorkers(srv.pid, 2);
    const t = await openTunnel(srv.port, echo.target);

    const n = countLines(srv, /reloaded: generation/);
    process.kill(srv.pid, 'SIGHUP');
    await srv.waitForLines(/reloaded: generation 2 /, n + 1, 5000);
    // the new generation is up, the old one still holds the tunnel
    await waitFor(() => childPids(srv.pid).filter((p) => !gen1.includes(p)).length === 2,
      { timeout: 5000, what: 'two workers of generation 2' });
    await srv.waitForLines(/worker \d+ draining: /, 2, 5000);
    const st = await statuses(srv.port, '/readyz', 12);
    assert.deepEqual(st, Array(12).fill(200), `after a reload the server is ready: ${st}`);
    assert.deepEqual(await statuses(srv.port, '/healthz', 6), Array(6).fill(200));
    assert.equal(await echoRound(t, 1500), 0, 'the old-generation tunnel relays');
    const t2 = await openTunnel(srv.port, echo.target);
    assert.equal(await echoRound(t2, 1500), 0, 'a new tunnel relays');
    const m = (await get(srv.port, '/metrics', { Authorization: `Bearer ${tok}` })).body;
    assert.match(m, /^ech3_reloads_total 1$/m);
    assert.match(m, /^ech3_tunnels_open 2$/m);
    t.close();
    t2.close();
    await Promise.all([t.waitClose(5000), t2.waitClose(5000)]);
  });
});
