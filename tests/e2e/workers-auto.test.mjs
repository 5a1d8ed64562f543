// `workers = 0` starts one worker per CPU the process may really use: the CPUs of its affinity
// mask, capped by its cgroup's CPU limit. Run under `taskset -c 0` on this machine, and in a
// cgroup limited to one CPU (cgroup v1 cpu controller or v2 with cpu enabled at the root; the
// test says so and skips when neither can be written, e.g. not root).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import { childPids, echoRound, sleep } from './lib/lifecycle.mjs';

const SERVING = /serving: listen=\S+ workers=(\d+) /;

async function workersOf(srv) {
  const line = await srv.waitForLine(SERVING, 3000);
  return Number(SERVING.exec(line)[1]);
}

// A fresh cgroup allowed one CPU's worth of time, or null (with the reason) if none can be made.
function oneCpuCgroup() {
  const name = `ech3-e2e-${process.pid}-${Date.now()}`;
  const tries = [
    { root: '/sys/fs/cgroup/cpu', write: (d) => {
      writeFileSync(`${d}/cpu.cfs_period_us`, '100000');
      writeFileSync(`${d}/cpu.cfs_quota_us`, '100000');
    } },
    { root: '/sys/fs/cgroup', write: (d) => writeFileSync(`${d}/cpu.max`, '100000 100000') },
  ];
  const why = [];
  for (const t of tries) {
    if (t.root === '/sys/fs/cgroup' &&
        !(existsSync(`${t.root}/cgroup.subtree_control`) &&
          /\bcpu\b/.test(readFileSync(`${t.root}/cgroup.subtree_control`, 'latin1')))) {
      why.push('no cgroup v2 cpu controller at the root');
      continue;
    }
    if (!existsSync(`${t.root}/cgroup.procs`)) { why.push(`no ${t.root}`); continue; }
    const dir = `${t.root}/${name}`;
    try {
      mkdirSync(dir);
      t.write(dir);
      return { dir, reason: null };
    } catch (e) {
      why.push(`${dir}: ${e.code || e.message}`);
      try { rmdirSync(dir); } catch { /* not made */ }
    }
  }
  return { dir: null, reason: why.join('; ') };
}

describe('workers = 0: one worker per usable CPU', () => {
  const servers = [];
  const cgroups = [];
  let echo;
  after(async () => {
    for (const s of servers) await s.stop(3000);
    await echo?.close();
    for (const d of cgroups) {
      for (let i = 0; i < 50; i++) {
        try { rmdirSync(d); break; } catch { await sleep(100); }
      }
    }
  });

  it('under taskset -c 0 it starts one worker, which serves', { timeout: 15000 }, async () => {
    echo ??= await startEcho();
    const srv = await startServer({ workers: 0, wrap: ['taskset', '-c', '0'] });
    servers.push(srv);
    assert.equal(await workersOf(srv), 1);
    const t = await openTunnel(srv.port, echo.target);
    assert.equal(await echoRound(t), 0);
    t.close();
    await sleep(100);
    assert.equal(childPids(srv.pid).length, 1, 'one worker process');
  });

  it('without limits it starts one per CPU of its affinity', { timeout: 15000 }, async () => {
    const srv = await startServer({ workers: 0 });
    servers.push(srv);
    const n = await workersOf(srv);
    assert.ok(n >= 1 && n <= os.availableParallelism(),
      `workers=${n}, availableParallelism=${os.availableParallelism()}`);
  });

  it('in a cgroup limited to one CPU it starts one worker whatever the affinity', { timeout: 15000 }, async (t) => {
    if (os.availableParallelism() < 2) {
      t.skip('one CPU here: the cgroup limit would not change the count');
      return;
    }
    const { dir, reason } = oneCpuCgroup();
    if (dir === null) {
      t.skip(`cannot make a cgroup with a CPU limit: ${reason}`);
      return;
    }
    cgroups.push(dir);
    echo ??= await startEcho();
    const srv = await startServer({
      workers: 0,
      wrap: ['sh', '-c', 'echo $$ > "$0" && exec "$@"', `${dir}/cgroup.procs`],
    });
    servers.push(srv);
    assert.equal(await workersOf(srv), 1);
    const tun = await openTunnel(srv.port, echo.target);
    assert.equal(await echoRound(tun), 0);
    tun.close();
  });
});
