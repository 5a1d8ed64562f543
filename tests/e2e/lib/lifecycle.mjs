// Helpers for the process-lifecycle tests (reload, drain, stop, crash, binary upgrade).
//
// Process checks go through /proc: a zombie (state Z) counts as gone, because an orphaned worker
// may sit unreaped for a while under this container's init and kill(pid, 0) would still succeed.

import net from 'node:net';
import path from 'node:path';
import os from 'node:os';
import { readFileSync, readdirSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { openTunnel } from './client.mjs';
import { ECH3_BIN, sleep, isEch3Pid } from './server.mjs';

export { sleep };

/** Process state letter from /proc/<pid>/stat, or null if there is no such process. */
export function procState(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // the comm field may contain spaces/parens: the state follows the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

/** Parent pid from /proc/<pid>/stat, or null. */
export function procPpid(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/** true if pid is a running (not zombie) ech3 process. */
export function isRunningEch3(pid) {
  const st = procState(pid);
  if (st === null || st === 'Z' || st === 'X' || st === 'x') return false;
  return isEch3Pid(pid);
}

/** Children of pid (its workers, for a master) that are running ech3 processes. */
export function childPids(pid) {
  const out = new Set();
  let tasks = [];
  try { tasks = readdirSync(`/proc/${pid}/task`); } catch { return []; }
  for (const t of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, 'latin1').trim().split(/\s+/)) {
        if (c) out.add(Number(c));
      }
    } catch { /* task gone */ }
  }
  return [...out].filter((p) => isRunningEch3(p)).sort((a, b) => a - b);
}

/** Poll fn() every `every` ms until it returns a truthy value; returns it, or throws after timeout. */
export async function waitFor(fn, { timeout = 5000, every = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timeout (${timeout} ms) waiting for ${what}`);
    await sleep(every);
  }
}

/** Wait until `n` worker processes are children of the master; returns their pids. */
export function waitWorkers(masterPid, n, timeout = 5000) {
  return waitFor(() => { const c = childPids(masterPid); return c.length >= n ? c : null; },
    { timeout, what: `${n} workers under master ${masterPid} (have ${childPids(masterPid).join(',')})` });
}

/** Resolves with ms elapsed when every pid is gone (not running), or null after timeout. */
export async function waitGone(pids, timeout) {
  const started = Date.now();
  for (;;) {
    if (pids.every((p) => !isRunningEch3(p))) return Date.now() - started;
    if (Date.now() - started > timeout) return null;
    await sleep(20);
  }
}

/** Count the lines of srv matching re. */
export const countLines = (srv, re) => srv.lines.filter((l) => re.test(l)).length;

/** Wait until more than `before` lines match re; returns the newest match. */
export async function waitNewLine(srv, re, before, timeout = 5000) {
  const m = await srv.waitForLines(re, before + 1, timeout);
  return m[m.length - 1];
}

/** A fresh temp path for config / pid files. */
export function tmpPath(name) {
  return path.join(os.tmpdir(), `ech3-lifecycle-${process.pid}-${randomBytes(4).toString('hex')}-${name}`);
}

/** Atomically (re)write a file: the server never sees a half-written config. */
export function writeFileAtomic(file, text) {
  const tmp = `${file}.tmp-${randomBytes(3).toString('hex')}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export function rmQuiet(file) { try { rmSync(file, { force: true }); } catch { /* ignore */ } }

/**
 * Try a plain TCP connect and report what happened within `timeout` ms:
 * 'refused' (ECONNREFUSED/ECONNRESET/closed before or right after connecting, no bytes),
 * 'accepted' (the connection stayed open, or an HTTP answer came back), plus details.
 * An upgrade request is written so that a serving worker would answer 101.
 */
export function probeConnect(port, { host = '127.0.0.1', timeout = 1500, request } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const s = net.connect({ port, host });
    let data = Buffer.alloc(0);
    let connected = false;
    let done = false;
    const finish = (outcome, error) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve({ outcome, connected, error: error?.code ?? error?.message ?? null, bytes: data.toString('latin1').slice(0, 120), ms: Date.now() - started });
    };
    const t = setTimeout(() => finish(data.length ? 'answered' : 'open'), timeout);
    s.on('connect', () => {
      connected = true;
      if (request) s.write(request);
    });
    s.on('data', (d) => {
      data = Buffer.concat([data, d]);
      if (data.includes('\r\n\r\n')) finish('answered');
    });
    s.on('error', (e) => finish(data.length ? 'answered' : 'refused', e));
    s.on('close', () => finish(data.length ? 'answered' : 'refused'));
  });
}

/** Exchange `size` random bytes over an open echo tunnel; returns the number of differing bytes (throws if the tunnel breaks). */
export async function echoRound(t, size = 1024, ms = 5000) {
  const buf = randomBytes(size);
  const reader = t.readBytes(size, ms);
  await t.sendBinary(buf);
  const got = await reader;
  return diffBytes(buf, got);
}

export function diffBytes(a, b) {
  let n = Math.abs(a.length - b.length);
  const len = Math.min(a.length, b.length);
  for (let i = 0; i < len; i++) if (a[i] !== b[i]) n++;
  return n;
}

/**
 * Closed-loop load: `clients` concurrent loops, each opening a tunnel to `target`, sending `size`
 * random bytes, checking the echo byte-exact, sending CLOSE and waiting for the close, until
 * `durationMs` has passed. Returns
 *   { tunnels, failedConnects, brokenTunnels, corruptedBytes, errors: [first few messages] }
 * where failedConnects are tunnels that could not be opened (TCP error, non-101, no CONNECTED)
 * and brokenTunnels tunnels that were opened but did not complete the echo and close.
 */
export async function runLoad({ port, target, token, clients = 16, durationMs = 15000, size = 1024, opTimeout = 8000, onTunnel } = {}) {
  const stats = { tunnels: 0, failedConnects: 0, brokenTunnels: 0, corruptedBytes: 0, errors: [] };
  const note = (kind, e) => {
    if (stats.errors.length < 10) stats.errors.push(`${new Date().toISOString()} ${kind}: ${e?.message ?? e}${e?.status ? ` status=${e.status}` : ''}`);
  };
  const end = Date.now() + durationMs;
  const loop = async () => {
    while (Date.now() < end) {
      let t;
      try {
        t = await openTunnel(port, target, { token, timeout: opTimeout, replyTimeout: opTimeout });
      } catch (e) {
        stats.failedConnects++;
        note('connect', e);
        await sleep(10);
        continue;
      }
      try {
        const buf = randomBytes(size);
        const reader = t.readBytes(size, opTimeout);
        await t.sendBinary(buf);
        const got = await reader;
        const bad = diffBytes(buf, got);
        stats.corruptedBytes += bad;
        if (bad) note('corrupt', new Error(`${bad} of ${size} bytes differ`));
        await t.sendText('CLOSE');
        const { code } = await t.waitClose(opTimeout);
        if (code !== 1000) throw new Error(`close code ${code}, expected 1000`);
        stats.tunnels++;
        onTunnel?.();
      } catch (e) {
        stats.brokenTunnels++;
        note('tunnel', e);
      } finally {
        t.terminate();
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, loop));
  return stats;
}

/** Stop a master by pid and make sure it and the given workers are gone (SIGKILL as a last resort). */
export async function stopPids(pids, { signal = 'SIGTERM', timeout = 3000 } = {}) {
  for (const p of pids) if (isRunningEch3(p)) { try { process.kill(p, signal); } catch { /* gone */ } }
  if ((await waitGone(pids, timeout)) === null) {
    for (const p of pids) if (isRunningEch3(p)) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    await waitGone(pids, 2000);
  }
}

/** Resolves true once the server's stderr pipe is closed (every line read), false after ms. */
export function stderrClosed(srv, ms = 2000) {
  const s = srv.proc.stderr;
  if (s.destroyed || s.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    s.once('close', () => { clearTimeout(t); resolve(true); });
  });
}

/** Wait until `n` workers of the master are not in `old` (a new generation); returns them. */
export function waitNewWorkers(masterPid, old, n, timeout = 5000) {
  return waitFor(() => { const c = childPids(masterPid).filter((p) => !old.includes(p)); return c.length >= n ? c : null; },
    { timeout, what: `${n} new workers under master ${masterPid} (not ${old.join(',')}; children now ${childPids(masterPid).join(',')})` });
}
