// Start / stop the real ech3 binary for end-to-end tests.
//
// startServer() spawns `ech3 --listen 127.0.0.1:0 --workers N [--set k=v ...]`, collects every
// stderr line into `server.lines`, parses `listening on ADDR:PORT` and resolves once every listen
// address has reported. stop() sends SIGTERM to the master, SIGKILL after a timeout, and then kills
// any worker process (pid seen in `ech3[PID]` log prefixes) that is still alive and is still an
// ech3 process. Every server ever started is also killed when the test process exits.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..', '..');
export const ECH3_BIN = process.env.ECH3_BIN || path.join(REPO_ROOT, 'build', 'ech3');
export const DEFAULT_TOKEN = 'e2e-secret-token';
export const EGRESS_ALLOW = '127.0.0.0/8,::1/128';

const live = new Set();

function killAllNow() {
  for (const s of live) {
    for (const pid of s.allPids()) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  live.clear();
}
process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => { killAllNow(); process.exit(128 + 1); });
}

// Every server this test process starts carries this tag in its environment, so cleanup never
// signals a process of another test that happens to reuse a recorded pid (pid_max is small here).
export const TEST_TAG = `E2E_TAG=${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;

export function isEch3Pid(pid) {
  try {
    const exe = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')[0];
    if (path.basename(exe) !== path.basename(ECH3_BIN)) return false;
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(TEST_TAG);
  } catch {
    return false;
  }
}

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** like sleep, but does not keep the process alive */
const sleepUnref = (ms) => new Promise((r) => { setTimeout(r, ms).unref(); });

/**
 * @param {object} [opts]
 * @param {number} [opts.workers=1]
 * @param {string[]} [opts.listen=['127.0.0.1:0']]
 * @param {Record<string,string|number>} [opts.set]  settings passed as --set key=value
 * @param {Record<string,string|undefined>} [opts.env] extra env (undefined removes a variable)
 * @param {string|null} [opts.token=DEFAULT_TOKEN] TOKEN env; null = no TOKEN
 * @param {string[]} [opts.args] extra raw arguments
 * @param {number} [opts.startTimeout=8000]
 */
export async function startServer(opts = {}) {
  const {
    workers = 1,
    listen = ['127.0.0.1:0'],
    set = {},
    env = {},
    token = DEFAULT_TOKEN,
    args = [],
    startTimeout = 8000,
  } = opts;
  if (!existsSync(ECH3_BIN)) {
    throw new Error(`ech3 binary not found at ${ECH3_BIN} (build it with make, or set ECH3_BIN)`);
  }
  const argv = [];
  for (const l of listen) argv.push('--listen', l);
  argv.push('--workers', String(workers));
  for (const [k, v] of Object.entries(set)) argv.push('--set', `${k}=${v}`);
  argv.push(...args);

  const childEnv = { ...process.env };
  // Do not inherit ech3 configuration from the caller's environment.
  for (const k of Object.keys(childEnv)) {
    if (k.startsWith('ECH3_') && k !== 'ECH3_BIN') delete childEnv[k];
  }
  delete childEnv.TOKEN;
  delete childEnv.PRIP;
  delete childEnv.PORT;
  childEnv.ECH3_EGRESS_ALLOW = EGRESS_ALLOW;
  if (token !== null) childEnv.TOKEN = token;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = String(v);
  }

  childEnv[TEST_TAG.split('=')[0]] = TEST_TAG.split('=')[1];
  const proc = spawn(ECH3_BIN, argv, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  const listeners = new Set();
  const addrs = new Map(); // bare address ("127.0.0.1", "::1") -> port
  const pids = new Set([proc.pid]);
  let exited = null;
  let spawnError = null;
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => { exited = { code, signal }; resolve(exited); });
    // spawn failures (ENOENT, ETXTBSY while the binary is being rebuilt, ...) emit 'error' and no 'exit'
    proc.on('error', (err) => { spawnError = err; if (exited === null) { exited = { code: null, signal: null, error: err }; resolve(exited); } });
  });

  const onLine = (line) => {
    lines.push(line);
    const pm = /ech3\[(\d+)\]/.exec(line);
    if (pm) pids.add(Number(pm[1]));
    const lm = /listening on (\S+):(\d+)/.exec(line);
    if (lm) addrs.set(lm[1].replace(/^\[(.*)\]$/, '$1'), Number(lm[2])); // key: bare address
    for (const fn of listeners) fn(line);
  };
  const splitter = (stream) => {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i).replace(/\r$/, ''));
        buf = buf.slice(i + 1);
      }
    });
    stream.on('end', () => { if (buf) onLine(buf); buf = ''; });
  };
  splitter(proc.stderr);
  splitter(proc.stdout); // anything on stdout is collected too

  const server = {
    proc,
    pid: proc.pid,
    lines,
    addrs,
    port: 0,
    token,
    get exited() { return exited; },
    exitPromise,
    allPids: () => [...pids],
    /** pids seen in log prefixes ech3[PID] */
    logPids: () => new Set(lines.map((l) => /ech3\[(\d+)\]/.exec(l)).filter(Boolean).map((m) => Number(m[1]))),
    /** wait until a line matching re exists (already or in the future) */
    waitForLine(re, timeout = 5000) {
      const found = lines.find((l) => re.test(l));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => { listeners.delete(fn); reject(new Error(`timeout waiting for log line ${re}\n--- stderr ---\n${lines.slice(-40).join('\n')}`)); }, timeout);
        const fn = (l) => { if (re.test(l)) { clearTimeout(t); listeners.delete(fn); resolve(l); } };
        listeners.add(fn);
      });
    },
    /** wait until at least n lines match re; returns them */
    async waitForLines(re, n, timeout = 5000) {
      const deadline = Date.now() + timeout;
      for (;;) {
        const m = lines.filter((l) => re.test(l));
        if (m.length >= n) return m;
        if (Date.now() > deadline) {
          throw new Error(`timeout: ${m.length}/${n} log lines match ${re}\n--- last stderr ---\n${lines.slice(-20).join('\n')}`);
        }
        await sleep(50);
      }
    },
    url(pathname = '/', addr) {
      const a = addr ?? [...addrs.keys()][0];
      return `ws://${a.includes(':') ? `[${a}]` : a}:${addrs.get(a)}${pathname}`;
    },
    async stop(timeout = 3000) {
      if (!live.has(server)) return exited;
      if (exited === null) {
        try { proc.kill('SIGTERM'); } catch { /* gone */ }
        const t = await Promise.race([exitPromise, sleepUnref(timeout).then(() => null)]);
        if (t === null) {
          try { proc.kill('SIGKILL'); } catch { /* gone */ }
          await Promise.race([exitPromise, sleepUnref(2000)]);
        }
      }
      // Workers that outlived the master: kill them by pid (only if still an ech3 process).
      for (const pid of pids) {
        if (pid === proc.pid) continue;
        if (alive(pid) && isEch3Pid(pid)) {
          try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
        }
      }
      const deadline = Date.now() + 2000;
      for (const pid of pids) {
        if (pid === proc.pid) continue;
        while (alive(pid) && isEch3Pid(pid) && Date.now() < deadline) await sleep(50);
        if (alive(pid) && isEch3Pid(pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      }
      live.delete(server);
      return exited;
    },
    dumpLog(n = 40) { return lines.slice(-n).join('\n'); },
  };
  live.add(server);

  const wanted = listen.length;
  try {
    await new Promise((resolve, reject) => {
      const check = () => {
        if (addrs.size >= wanted) { done(); resolve(); }
      };
      const timer = setTimeout(() => { done(); reject(new Error(`ech3 did not report ${wanted} 'listening on' line(s) within ${startTimeout} ms\n--- stderr ---\n${lines.join('\n')}`)); }, startTimeout);
      const onExit = (code, signal) => { done(); reject(new Error(`ech3 exited early (code=${code} signal=${signal}) args=${argv.join(' ')}\n--- stderr ---\n${lines.join('\n')}`)); };
      const onError = (err) => { done(); reject(new Error(`could not start ${ECH3_BIN}: ${err.message}`)); };
      const fn = () => check();
      function done() { clearTimeout(timer); listeners.delete(fn); proc.off('exit', onExit); proc.off('error', onError); }
      listeners.add(fn);
      proc.on('exit', onExit);
      proc.on('error', onError);
      if (spawnError) { onError(spawnError); return; }
      check();
    });
  } catch (e) {
    await server.stop(500);
    throw e;
  }
  server.port = addrs.get('127.0.0.1') ?? [...addrs.values()][0];
  return server;
}

export { sleep };
