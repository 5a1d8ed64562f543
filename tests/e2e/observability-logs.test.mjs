// Logs: log_format=json gives one JSON object per line (ts, level, pid, role, conn, msg); every
// line of a tunnel carries its connection id (json "conn", text "c=<8 hex>"); one access line per
// tunnel with exact byte counts and the end reason; the startup summary; log_file reopened on
// SIGUSR1 by the master and by the workers.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  mkdtempSync, chmodSync, renameSync, readFileSync, writeFileSync, chownSync, rmSync, existsSync,
} from 'node:fs';
import { startServer, sleep } from './lib/server.mjs';
import { openWs, openTunnel } from './lib/client.mjs';
import { startTarget, closedPort } from './lib/targets.mjs';
import { waitWorkers, waitFor, childPids } from './lib/lifecycle.mjs';

const T = { timeout: 30000 };
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const TEXT_LINE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z) (error|warn|info|debug) ech3\[(\d+)\]: (?:c=([0-9a-f]{8}) )?(.*)$/;

/**
 * Target: reads a header line "U<up>D<down>[K]\n" (counted in <up>); once <up> bytes arrived it
 * writes <down> bytes, then closes, or with K keeps the connection open.
 */
function startSized() {
  return startTarget({
    onConnection: (c) => {
      c.socket.on('data', () => {
        if (c.answered) return;
        const all = c.data();
        const nl = all.indexOf(10);
        if (nl < 0) return;
        const h = /^U(\d+)D(\d+)(K?)$/.exec(all.subarray(0, nl).toString('latin1'));
        if (!h) { c.socket.destroy(); return; }
        if (all.length >= Number(h[1])) {
          c.answered = true;
          const out = Buffer.alloc(Number(h[2]), 0x64);
          if (h[3]) c.socket.write(out); else c.socket.end(out);
        }
      });
      c.socket.on('end', () => c.socket.end());
    },
  });
}

/**
 * Opens a tunnel that moves `up` bytes to the target (header as first data, then binary) and
 * `down` back, then ends it the way `how` says. Resolves the client's port.
 *   target  the target closes after sending           -> end="target EOF"
 *   CLOSE   the client sends the CLOSE command         -> end="client CLOSE"
 *   frame   the client sends a close frame             -> end="client close frame"
 *   drop    the client drops the TCP connection        -> end="client EOF" (or read error)
 */
async function tunnel(port, target, up, down, how) {
  const head = `U${up}D${down}${how === 'target' ? '' : 'K'}\n`;
  const t = await openTunnel(port, target, { first: head });
  const clientPort = t.ws._socket.localPort;
  const reader = t.readBytes(down, 10000);
  await t.sendBinary(randomBytes(up - head.length));
  const got = await reader;
  assert.equal(got.length, down);
  if (how === 'target') {
    assert.equal(await t.nextText(), 'CLOSE');
    await t.waitClose(5000);
  } else if (how === 'CLOSE') {
    await t.sendText('CLOSE');
    await t.waitClose(5000);
  } else if (how === 'frame') {
    t.close(1000);
    await t.waitClose(5000);
  } else {
    t.terminate();
  }
  return clientPort;
}

const END = {
  target: /^target EOF$/,
  CLOSE: /^client CLOSE$/,
  frame: /^client close frame$/,
  drop: /^client (EOF|read error)$/,
};

describe('observability: JSON logs', () => {
  let srv;
  let sized;
  const plan = [
    { up: 1234, down: 5678, how: 'target' },
    { up: 70000, down: 3, how: 'CLOSE' },
    { up: 20, down: 100000, how: 'frame' },
    { up: 4096, down: 4096, how: 'drop' },
  ];
  let tunnels;
  let failedPort;
  let closed;

  before(async () => {
    sized = await startSized();
    srv = await startServer({ workers: 2, set: { log_format: 'json', log_level: 'debug' } });
    await waitWorkers(srv.pid, 2);
    tunnels = [];
    for (const p of plan) tunnels.push({ ...p, port: await tunnel(srv.port, sized.target, p.up, p.down, p.how) });
    // an auth refusal and a target connect error
    const w = openWs(srv.port, { token: 'not-the-token' });
    await assert.rejects(w, (e) => e.status === 401);
    closed = await closedPort();
    const ce = await openTunnel(srv.port, `127.0.0.1:${closed}`, { expect: null });
    failedPort = ce.ws._socket.localPort;
    assert.match(await ce.nextText(), /^ERROR:connect failed/);
    await ce.waitClose(5000);
    await srv.waitForLines(/"msg":"access /, plan.length + 1, 8000);
    await srv.stop();
  });
  after(async () => { await srv?.stop(); await sized?.close(); });

  const parsed = () => srv.lines.map((l, i) => {
    try { return JSON.parse(l); } catch (e) { throw new Error(`stderr line ${i + 1} is not JSON (${e.message}): ${l}`); }
  });

  it('every stderr line is one JSON object with ts, level, pid, role, msg (and conn for tunnels)', T, () => {
    assert.ok(srv.lines.length > 10, `only ${srv.lines.length} lines`);
    const workers = new Set();
    for (const [i, o] of parsed().entries()) {
      const where = `line ${i + 1}: ${srv.lines[i]}`;
      assert.equal(typeof o, 'object', where);
      assert.ok(o !== null && !Array.isArray(o), where);
      const keys = Object.keys(o);
      for (const k of keys) assert.ok(['ts', 'level', 'pid', 'role', 'conn', 'msg'].includes(k), `unexpected key ${k}: ${where}`);
      for (const k of ['ts', 'level', 'pid', 'role', 'msg']) assert.ok(keys.includes(k), `no ${k}: ${where}`);
      assert.match(o.ts, ISO, where);
      assert.ok(Math.abs(Date.parse(o.ts) - Date.now()) < 120000, `ts far from now: ${where}`);
      assert.ok(['error', 'warn', 'info', 'debug'].includes(o.level), where);
      assert.ok(Number.isInteger(o.pid) && o.pid > 0, where);
      assert.ok(['master', 'worker'].includes(o.role), where);
      assert.equal(typeof o.msg, 'string', where);
      if ('conn' in o) {
        assert.match(o.conn, /^[0-9a-f]{8}$/, where);
        assert.equal(o.role, 'worker', `a conn line from the master: ${where}`);
      }
      if (o.role === 'master') assert.equal(o.pid, srv.pid, where);
      else { assert.notEqual(o.pid, srv.pid, where); workers.add(o.pid); }
    }
    assert.ok(workers.size >= 2, `lines from ${workers.size} workers`);
  });

  it('the startup summary line', T, () => {
    const s = parsed().filter((o) => / serving: /.test(o.msg));
    assert.equal(s.length, 1, 'exactly one summary line');
    assert.equal(s[0].role, 'master');
    assert.equal(s[0].level, 'info');
    assert.match(s[0].msg, new RegExp(`^ech3 \\d+\\.\\d+\\.\\d+\\S* serving: listen=127\\.0\\.0\\.1:${srv.port} workers=2 auth=token max_conn=\\d+ .*\\begress=\\S`), s[0].msg);
  });

  it('one access line per tunnel with exact up/down, the end reason, and a conn id shared by the tunnel\'s lines', T, () => {
    const all = parsed();
    const ids = new Set();
    for (const tn of tunnels) {
      const tag = `client=127.0.0.1:${tn.port} `;
      const acc = all.filter((o) => o.msg.startsWith('access ') && o.msg.includes(tag));
      assert.equal(acc.length, 1, `access lines for the tunnel from :${tn.port}`);
      const a = acc[0];
      const m = /^access client=127\.0\.0\.1:(\d+) user=(\S+) target=(\S+) up=(\d+) down=(\d+) dur_ms=(\d+) end="([^"]*)"$/.exec(a.msg);
      assert.ok(m, `access line format: ${a.msg}`);
      assert.equal(m[2], '-');
      assert.equal(m[3], sized.target);
      assert.equal(Number(m[4]), tn.up, `up of ${a.msg}`);
      assert.equal(Number(m[5]), tn.down, `down of ${a.msg}`);
      assert.match(m[7], END[tn.how], `end reason of the "${tn.how}" tunnel: ${a.msg}`);
      assert.equal(a.level, 'info');
      assert.match(a.conn ?? '', /^[0-9a-f]{8}$/, `access line without conn: ${JSON.stringify(a)}`);
      assert.ok(!ids.has(a.conn), `conn id ${a.conn} used by two tunnels`);
      ids.add(a.conn);
      // the tunnel's other lines: same conn, same worker; every line naming its client carries it
      const mine = all.filter((o) => o.conn === a.conn);
      assert.ok(mine.some((o) => /^tunnel open client=/.test(o.msg) && o.msg.includes(tag)), `no "tunnel open" line with conn ${a.conn}`);
      assert.ok(mine.some((o) => o.level === 'debug' && /^connected target=/.test(o.msg)), `no debug "connected" line with conn ${a.conn}`);
      for (const o of mine) assert.equal(o.pid, a.pid, `conn ${a.conn} logged by two processes`);
      for (const o of all.filter((x) => x.msg.includes(tag))) assert.equal(o.conn, a.conn, `line naming ${tag}without its conn: ${JSON.stringify(o)}`);
    }
  });

  it('refusals: the auth refusal and the failed connect carry a conn id', T, () => {
    const all = parsed();
    const auth = all.filter((o) => /^auth refused client=127\.0\.0\.1:\d+ user=- reason=invalid_token$/.test(o.msg));
    assert.equal(auth.length, 1, 'one auth refused line');
    assert.equal(auth[0].level, 'warn');
    assert.match(auth[0].conn ?? '', /^[0-9a-f]{8}$/);
    const tag = `client=127.0.0.1:${failedPort} `;
    const fail = all.filter((o) => o.msg.includes(tag));
    assert.ok(fail.some((o) => o.level === 'warn' && /^tunnel refused .*: connect failed/.test(o.msg)), JSON.stringify(fail));
    const acc = fail.find((o) => o.msg.startsWith('access '));
    assert.ok(acc, 'an access line for the failed connect');
    assert.match(acc.msg, new RegExp(`target=127\\.0\\.0\\.1:${closed} up=0 down=0 dur_ms=\\d+ end="connect failed"$`));
    assert.equal(new Set(fail.map((o) => o.conn)).size, 1, 'one conn id for the failed tunnel');
  });

  // With log_format=json and no token, master.c settle_token() fprintf()s the generated-token
  it('no token configured: the generated-token notice is JSON too', {
    ...T,
  }, async () => {
    const s = await startServer({ workers: 1, token: null, set: { log_format: 'json' } });
    try {
      await sleep(100);
      const bad = s.lines.filter((l) => { try { JSON.parse(l); return false; } catch { return true; } });
      assert.deepEqual(bad.map((l) => l.replace(/[0-9a-f]{32}/g, '<token>')), [], 'stderr lines that are not JSON with log_format=json');
    } finally {
      await s.stop();
    }
  });
});

describe('observability: log_level', () => {
  it('log_level=warn (set by a reload): refusals are logged, info and debug lines are not', T, async () => {
    const sized = await startSized();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ech3-obs-level-'));
    const cfg = path.join(dir, 'ech3.cfg');
    writeFileSync(cfg, 'log_level = "debug";\n');
    // startServer needs the info line "listening on": start at debug, then reload to warn
    const srv = await startServer({ workers: 1, args: ['-c', cfg] });
    try {
      const gen1 = await waitWorkers(srv.pid, 1);
      writeFileSync(cfg, 'log_level = "warn";\n');
      process.kill(srv.pid, 'SIGHUP');
      await waitFor(() => childPids(srv.pid).some((p) => !gen1.includes(p)), { timeout: 5000, what: 'a worker of generation 2' });
      await waitFor(() => !childPids(srv.pid).some((p) => gen1.includes(p)), { timeout: 5000, what: 'generation 1 gone' });
      await sleep(100);
      const mark = srv.lines.length;
      await tunnel(srv.port, sized.target, 300, 400, 'target');
      await assert.rejects(openWs(srv.port, { token: 'not-the-token' }), (e) => e.status === 401);
      await srv.waitForLine(/ warn ech3\[\d+\]: c=[0-9a-f]{8} auth refused /, 3000);
      await sleep(100);
      const later = srv.lines.slice(mark);
      assert.ok(later.length >= 1);
      for (const l of later) assert.match(l, / (warn|error) ech3\[/, `with log_level=warn: ${l}`);
      // before the reload, debug lines were there
      assert.ok(srv.lines.slice(0, mark).some((l) => / debug ech3\[/.test(l)), 'no debug line with log_level=debug');
    } finally {
      await srv.stop();
      await sized.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('observability: text logs', () => {
  let srv;
  let sized;
  before(async () => {
    sized = await startSized();
    srv = await startServer({ workers: 2, set: { log_level: 'debug' } });
  });
  after(async () => { await srv?.stop(); await sized?.close(); });

  it('every line is "TS LEVEL ech3[PID]: [c=<8 hex> ]msg"; tunnel lines carry c=', T, async () => {
    const ports = [];
    for (const how of ['target', 'CLOSE', 'frame']) ports.push(await tunnel(srv.port, sized.target, 300, 400, how));
    await assert.rejects(openWs(srv.port, { token: 'not-the-token' }), (e) => e.status === 401);
    await srv.waitForLines(/ access client=/, 3, 5000);
    await sleep(50);
    for (const l of srv.lines) assert.match(l, TEXT_LINE);
    const tunnelLines = srv.lines.filter((l) => /\bclient=\S+/.test(l));
    assert.ok(tunnelLines.length >= 7, tunnelLines.join('\n'));
    for (const l of tunnelLines) assert.match(l, /ech3\[\d+\]: c=[0-9a-f]{8} /, `a tunnel line without c=: ${l}`);
    for (const p of ports) {
      const mine = srv.lines.filter((l) => l.includes(`client=127.0.0.1:${p} `));
      const ids = new Set(mine.map((l) => TEXT_LINE.exec(l)[4]));
      assert.equal(ids.size, 1, `one c= for the tunnel from :${p}: ${mine.join('\n')}`);
      const [id] = ids;
      const withId = srv.lines.filter((l) => l.includes(` c=${id} `));
      assert.ok(withId.some((l) => / access client=.* up=300 down=400 dur_ms=\d+ end="/.test(l)), withId.join('\n'));
      assert.ok(withId.some((l) => / tunnel open client=/.test(l)));
      assert.ok(withId.some((l) => / debug ech3\[\d+\]: c=\S+ connected target=/.test(l)));
    }
  });
});

// ---- log_file and SIGUSR1 ----

function nobodyIds() {
  try {
    return { uid: Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' })) };
  } catch { return null; }
}

describe('observability: log_file and reopen on SIGUSR1', () => {
  const dirs = [];
  const servers = [];
  let sized;
  before(async () => { sized = await startSized(); });
  after(async () => {
    for (const s of servers) await s.stop();
    await sized?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** A log directory the workers (user nobody when the test runs as root) can create files in. */
  function logDir() {
    const d = mkdtempSync(path.join(os.tmpdir(), 'ech3-obs-logs-'));
    chmodSync(d, 0o777);
    dirs.push(d);
    return d;
  }

  const fileLines = (f) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);

  /** Tunnels until every worker has logged an access line into `file` after `mark`; returns them. */
  async function accessFromEveryWorker(srv, file, workers, mark) {
    const seen = new Set();
    for (let i = 0; i < 40 && seen.size < workers.length; i++) {
      const p = await tunnel(srv.port, sized.target, 100, 50, 'target');
      let line;
      await waitFor(() => (line = srv.lines.find((l) => l.includes(`access client=127.0.0.1:${p} `))), { timeout: 3000, what: `access line of :${p}` });
      seen.add(Number(/ech3\[(\d+)\]/.exec(line)[1]));
    }
    assert.equal(seen.size, workers.length, 'could not get a tunnel onto every worker');
    const lines = fileLines(file);
    const from = lines.findIndex((l) => l.includes(mark));
    return lines.slice(from + 1).filter((l) => / access client=/.test(l));
  }

  async function rotateAndCheck({ precreate }) {
    const dir = logDir();
    const file = path.join(dir, 'ech3.log');
    const srv = await startServer({ workers: 2, set: { log_file: file, log_level: 'info' } });
    servers.push(srv);
    const workers = await waitWorkers(srv.pid, 2);
    assert.deepEqual(srv.lines.filter((l) => !/^\d{4}-/.test(l)), [], 'stderr output besides the log file');
    // before the rotation: lines land in the file
    await tunnel(srv.port, sized.target, 100, 50, 'target');
    await waitFor(() => fileLines(file).some((l) => / access client=/.test(l)), { timeout: 3000, what: 'an access line in the log file' });
    assert.ok(fileLines(file).some((l) => / serving: /.test(l)), 'the summary line is in the log file');

    renameSync(file, `${file}.1`);
    if (precreate) {
      // what logrotate's "create 0640 nobody nogroup" does
      writeFileSync(file, '', { mode: 0o640 });
      const ids = process.getuid() === 0 ? nobodyIds() : null;
      if (ids) chownSync(file, ids.uid, ids.gid);
    }
    process.kill(srv.pid, 'SIGUSR1');
    await waitFor(() => fileLines(file).some((l) => /log file reopened/.test(l)), { timeout: 3000, what: '"log file reopened" in the new file' });
    await sleep(200); // the workers reopen when their accept loop wakes up
    const accessOld = (f) => fileLines(f).filter((l) => / access client=/.test(l)).length;
    const oldBefore = accessOld(`${file}.1`);
    const after = await accessFromEveryWorker(srv, file, workers, 'log file reopened');
    const pids = new Set(after.map((l) => Number(/ech3\[(\d+)\]/.exec(l)[1])));
    const old = fileLines(`${file}.1`);
    const problems = [...old, ...fileLines(file)].filter((l) => /reopen .*: /.test(l));
    for (const w of workers) {
      assert.ok(pids.has(w), `worker ${w} wrote no access line into the new ${path.basename(file)} after SIGUSR1; `
        + `its lines still go to the renamed file (${problems.join(' | ') || 'no reopen error logged'})`);
    }
    assert.deepEqual(problems, [], 'reopen errors logged');
    assert.equal(accessOld(`${file}.1`), oldBefore, 'access lines written to the renamed file after the reopen');
    return srv;
  }

  // As root, the master re-creates the file as root:root 0640 and the workers (user nobody) get
  it('rename the file, SIGUSR1: master and workers write to a new file at the original path', {
    ...T,
  }, async () => {
    await rotateAndCheck({ precreate: false });
  });

  it('the same when the new file is created first, owned by the workers\' user (logrotate "create")', T, async () => {
    await rotateAndCheck({ precreate: true });
  });
  it('a worker draining after a reload reopens too: its tunnel\'s access line lands in the new file', {
    ...T,
  }, async () => {
    const dir = logDir();
    const file = path.join(dir, 'ech3.log');
    const srv = await startServer({ workers: 1, set: { log_file: file, log_level: 'info', drain_timeout: 30 } });
    servers.push(srv);
    const [gen1] = await waitWorkers(srv.pid, 1);
    // a tunnel on generation 1 that stays open over the reload
    const head = 'U100D50K\n';
    const t = await openTunnel(srv.port, sized.target, { first: head });
    const clientPort = t.ws._socket.localPort;
    const reader = t.readBytes(50, 5000);
    await t.sendBinary(Buffer.alloc(100 - head.length, 0x75));
    await reader;
    process.kill(srv.pid, 'SIGHUP');
    await srv.waitForLine(/reloaded: generation 2/, 5000);
    await srv.waitForLine(new RegExp(`ech3\\[${gen1}\\]: worker \\d+ draining: 1 open`), 5000);
    // rotate (the new file made as logrotate's "create" does, so permissions are not the question)
    renameSync(file, `${file}.1`);
    writeFileSync(file, '', { mode: 0o640 });
    const ids = process.getuid() === 0 ? nobodyIds() : null;
    if (ids) chownSync(file, ids.uid, ids.gid);
    process.kill(srv.pid, 'SIGUSR1');
    await waitFor(() => fileLines(file).some((l) => /log file reopened/.test(l)), { timeout: 3000, what: '"log file reopened" in the new file' });
    await sleep(300);
    t.close();
    await t.waitClose(5000);
    const re = new RegExp(`ech3\\[${gen1}\\]: c=[0-9a-f]{8} access client=127\\.0\\.0\\.1:${clientPort} `);
    await waitFor(() => [...fileLines(file), ...fileLines(`${file}.1`)].some((l) => re.test(l)), { timeout: 5000, what: 'the access line of the draining tunnel' });
    assert.ok(fileLines(file).some((l) => re.test(l)),
      `the draining worker ${gen1} did not reopen on SIGUSR1: its access line went to the renamed file`);
  });
});
