// Start / stop the real ech3 binary for end-to-end tests.
//
// startServer() spawns `ech3 --listen 127.0.0.1:0 --workers N [--set k=v ...]`, collects every
// stderr line into `server.lines`, parses `listening on ADDR:PORT` and resolves once every listen
// address has reported. stop() sends SIGTERM to the master, SIGKILL after a timeout, and then kills
// any worker process (pid seen in `ech3[PID]` log prefixes, or `"pid":N` in JSON lines) that is
// still alive and is still an ech3 process. Every server ever started is also killed when the test
// process exits.
//
// For the secret check (tests/check-logs.mjs), every server's output is also appended to its own
// file under build/test-logs/ (or $ECH3_TEST_LOG_DIR), and every secret a server is started with
// (TOKEN, ECH3_TOKEN, ECH3_JWT_SECRET, ECH3_METRICS_TOKEN, --set token= / jwt.secret= /
// metrics_token=, the content of jwt.secret_file, the same keys in a -c config file) is recorded
// in build/test-logs/secrets.txt. Tests record the tokens they mint with recordSecret().
//
// A server started with `log_file` (in `set` or ECH3_LOG_FILE) writes nothing to stderr: that file
// is followed instead (like `tail -F`, surviving a rename), and its lines land in `server.lines`.

import { spawn } from 'node:child_process';
import {
  existsSync, readFileSync, mkdirSync, appendFileSync, openSync, writeSync, closeSync, readSync,
  statSync, fstatSync,
} from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..', '..');
export const ECH3_BIN = process.env.ECH3_BIN || path.join(REPO_ROOT, 'build', 'ech3');
export const DEFAULT_TOKEN = 'e2e-secret-token';
export const EGRESS_ALLOW = '127.0.0.0/8,::1/128';

const live = new Set();

// ---- logs and secrets kept for tests/check-logs.mjs ----

/** Where every server's output is kept, one file per server; cleared by tests/e2e/run.sh. */
export const TEST_LOG_DIR = process.env.ECH3_TEST_LOG_DIR || path.join(REPO_ROOT, 'build', 'test-logs');
/** The recorded secrets, one per line (build/ is never committed). */
export const SECRETS_FILE = path.join(TEST_LOG_DIR, 'secrets.txt');
const recordedSecrets = new Set();
let logSeq = 0;

/**
 * Record secrets (tokens, JWTs, keys a test minted) that must never appear in a server log.
 * Accepts strings, Buffers or arrays of them; values spanning lines are recorded line by line
 * (a PEM key: its long base64 lines). Returns its first argument, so `recordSecret(makeJwt(...))`
 * works inline.
 */
export function recordSecret(...values) {
  const out = [];
  const walk = (v) => {
    if (v == null) return;
    if (Array.isArray(v) || v instanceof Set) { for (const x of v) walk(x); return; }
    const str = Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
    for (const line of str.split(/\r?\n/)) {
      const t = line.trim();
      // PEM armour lines are not secret; everything else of 8+ characters is.
      if (t.length >= 8 && !/^-----(BEGIN|END) /.test(t) && !recordedSecrets.has(t)) {
        recordedSecrets.add(t);
        out.push(t);
      }
    }
  };
  for (const v of values) walk(v);
  if (out.length) {
    try {
      mkdirSync(TEST_LOG_DIR, { recursive: true });
      appendFileSync(SECRETS_FILE, `${out.join('\n')}\n`, { mode: 0o600 });
    } catch { /* the check will find fewer secrets; never fail a test for this */ }
  }
  return values[0];
}

const SECRET_KEYS = new Set(['token', 'jwt.secret', 'metrics_token']);
const SECRET_ENV = ['TOKEN', 'ECH3_TOKEN', 'ECH3_JWT_SECRET', 'ECH3_METRICS_TOKEN'];

function readQuiet(file) {
  try { return readFileSync(file, 'utf8'); } catch { return null; }
}

/** Secrets in a libconfig file: token, metrics_token, secret (in the jwt group), secret_file. */
function configFileSecrets(file) {
  const text = readQuiet(file);
  if (text === null) return [];
  const out = [];
  const re = /\b(token|metrics_token|secret|secret_file)\s*[=:]\s*"((?:[^"\\]|\\.)*)"/g;
  for (let m; (m = re.exec(text));) {
    if (m[1] === 'secret_file') out.push(readQuiet(m[2]));
    else out.push(m[2]);
  }
  return out;
}

/** The -c / --config files in argv. */
function configFiles(argv) {
  const out = [];
  for (let i = 0; i < argv.length; i++) {
    if ((argv[i] === '-c' || argv[i] === '--config') && i + 1 < argv.length) out.push(argv[++i]);
    else if (argv[i].startsWith('--config=')) out.push(argv[i].slice(9));
  }
  return out;
}

/** Every secret a server is started with (see the header comment). */
function serverSecrets(setting, env, argv) {
  const out = [];
  for (const [k, v] of Object.entries(setting)) {
    if (SECRET_KEYS.has(k)) out.push(String(v));
    if (k === 'jwt.secret_file') out.push(readQuiet(String(v)));
  }
  for (const k of SECRET_ENV) if (env[k]) out.push(env[k]);
  if (env.ECH3_JWT_SECRET_FILE) out.push(readQuiet(env.ECH3_JWT_SECRET_FILE));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    let kv = null;
    if ((a === '--set' || a === '-S') && i + 1 < argv.length) kv = argv[++i];
    else if (a.startsWith('--set=')) kv = a.slice(6);
    else if ((a === '-c' || a === '--config') && i + 1 < argv.length) i++;
    if (kv !== null) {
      const j = kv.indexOf('=');
      const k = kv.slice(0, j);
      if (SECRET_KEYS.has(k)) out.push(kv.slice(j + 1));
      if (k === 'jwt.secret_file') out.push(readQuiet(kv.slice(j + 1)));
    }
  }
  for (const f of configFiles(argv)) out.push(...configFileSecrets(f));
  return out;
}

/** Opens this server's file under TEST_LOG_DIR; null if that is impossible. */
function openTestLog(childPid) {
  try {
    mkdirSync(TEST_LOG_DIR, { recursive: true });
    const base = path.basename(process.argv[1] || 'node').replace(/\.test\.m?js$|\.m?js$/, '');
    const file = path.join(TEST_LOG_DIR, `${base}-${process.pid}-${++logSeq}-${childPid}.log`);
    return { file, fd: openSync(file, 'a') };
  } catch {
    return null;
  }
}

/**
 * Follow a file like `tail -F`: read what is appended; when the path names a new file (rotated),
 * keep reading the old one to its end and start on the new one. onLine gets complete lines.
 */
function followFile(file, onLine) {
  const open = []; // { fd, ino, pos, dec, buf }
  const chunk = Buffer.alloc(64 * 1024);
  const drain = (f) => {
    for (;;) {
      let n;
      try { n = readSync(f.fd, chunk, 0, chunk.length, f.pos); } catch { return; }
      if (n <= 0) break;
      f.pos += n;
      f.buf += f.dec.write(chunk.subarray(0, n));
      let i;
      while ((i = f.buf.indexOf('\n')) >= 0) {
        onLine(f.buf.slice(0, i).replace(/\r$/, ''));
        f.buf = f.buf.slice(i + 1);
      }
    }
  };
  const poll = () => {
    for (const f of open) drain(f);
    let st = null;
    try { st = statSync(file); } catch { /* not there (yet) */ }
    if (st && !open.some((f) => f.ino === st.ino)) {
      try {
        const fd = openSync(file, 'r');
        const f = { fd, ino: fstatSync(fd).ino, pos: 0, dec: new StringDecoder('utf8'), buf: '' };
        open.push(f);
        drain(f);
      } catch { /* try again next time */ }
    }
  };
  const timer = setInterval(poll, 50);
  timer.unref();
  poll();
  return {
    poll,
    stop() {
      clearInterval(timer);
      poll();
      for (const f of open) {
        if (f.buf) onLine(f.buf);
        try { closeSync(f.fd); } catch { /* ignore */ }
      }
      open.length = 0;
    },
  };
}

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
 * @param {string[]} [opts.follow] files to follow into `lines` (default: the log_file, if one is set)
 * @param {string[]} [opts.wrap] a command that execs its arguments (`taskset -c 0`), run with the
 *   ech3 binary and its arguments appended; the pid stays the master's
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
    wrap = [],
  } = opts;
  let { follow } = opts;
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
  recordSecret(serverSecrets(set, childEnv, argv));
  if (follow === undefined) {
    const lf = set.log_file ?? childEnv.ECH3_LOG_FILE;
    follow = lf ? [String(lf)] : [];
  }
  const [cmd, ...cmdArgs] = [...wrap, ECH3_BIN, ...argv];
  const proc = spawn(cmd, cmdArgs, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const testLog = proc.pid ? openTestLog(proc.pid) : null;
  const lines = [];
  const listeners = new Set();
  const addrs = new Map(); // bare address ("127.0.0.1", "::1") -> port
  const metricsAddrs = new Map(); // the same, for the metrics_listen listener
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
    if (testLog?.fd != null) {
      try { writeSync(testLog.fd, `${line}\n`); } catch { /* keep testing */ }
    }
    const pm = /ech3\[(\d+)\]/.exec(line) ?? /^\{[^{}]*?"pid":(\d+)/.exec(line);
    if (pm) pids.add(Number(pm[1]));
    const lm = /listening on (\S+):(\d+)/.exec(line);
    // key: bare address; the metrics-only listener (metrics_listen) is kept apart
    if (lm && /metrics only/.test(line)) metricsAddrs.set(lm[1].replace(/^\[(.*)\]$/, '$1'), Number(lm[2]));
    else if (lm) addrs.set(lm[1].replace(/^\[(.*)\]$/, '$1'), Number(lm[2]));
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
  const followers = follow.map((f) => followFile(f, onLine));
  let streamsOpen = 2;
  const streamsDone = new Promise((resolve) => {
    const one = () => { if (--streamsOpen === 0) resolve(); };
    proc.stderr.once('close', one);
    proc.stdout.once('close', one);
  });

  const server = {
    proc,
    pid: proc.pid,
    lines,
    addrs,
    metricsAddrs,
    port: 0,
    /** port of the metrics_listen listener (0 if none) */
    metricsPort: 0,
    token,
    get exited() { return exited; },
    exitPromise,
    allPids: () => [...pids],
    /** pids seen in log prefixes ech3[PID] (or "pid":PID of JSON lines) */
    logPids: () => new Set(lines.map((l) => /ech3\[(\d+)\]/.exec(l) ?? /^\{[^{}]*?"pid":(\d+)/.exec(l))
      .filter(Boolean).map((m) => Number(m[1]))),
    /** path of this server's copy of its output under TEST_LOG_DIR (null if none) */
    testLogFile: testLog?.file ?? null,
    /** read the followed files now (lines appear in `lines`) */
    pollFollowed() { for (const f of followers) f.poll(); },
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
      // a test may have rewritten the config file (and reloaded): record its secrets now too
      recordSecret(configFiles(argv).map(configFileSecrets));
      // the rest of the output, then close this server's test log
      await Promise.race([streamsDone, sleepUnref(1000)]);
      for (const f of followers) f.stop();
      if (testLog?.fd != null) {
        try { closeSync(testLog.fd); } catch { /* ignore */ }
        testLog.fd = null;
      }
      return exited;
    },
    dumpLog(n = 40) { return lines.slice(-n).join('\n'); },
  };
  live.add(server);

  const wanted = listen.length;
  const wantedMetrics = (set.metrics_listen ?? childEnv.ECH3_METRICS_LISTEN) ? 1 : 0;
  try {
    await new Promise((resolve, reject) => {
      const check = () => {
        if (addrs.size >= wanted && metricsAddrs.size >= wantedMetrics) { done(); resolve(); }
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
  server.metricsPort = [...metricsAddrs.values()][0] ?? 0;
  return server;
}

export { sleep };
