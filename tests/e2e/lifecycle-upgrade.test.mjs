// Binary upgrade (SIGUSR2) under load: the master execs the binary on disk with its listening
// sockets; the new master serves on the same port and rewrites pid_file, the old one drains and
// exits 0; not one connection fails on the way.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import {
  runLoad, echoRound, childPids, waitWorkers, waitGone, isRunningEch3, stopPids, tmpPath, rmQuiet, writeFileAtomic, sleep,
} from './lib/lifecycle.mjs';

const CLIENTS = 8;
const DURATION_MS = 6000;
const USR2_AT_MS = 2000;

const readPid = (f) => Number(readFileSync(f, 'latin1').trim());

describe('lifecycle: binary upgrade (SIGUSR2)', () => {
  let srv;
  let echo;
  const pidFile = tmpPath('ech3.pid');
  const extraPids = new Set(); // the new master and its workers: not children of the test runner
  after(async () => {
    await stopPids([...extraPids], { signal: 'SIGTERM', timeout: 4000 });
    await srv?.stop(1000);
    await stopPids([...extraPids], { signal: 'SIGKILL' });
    await echo?.close();
    rmQuiet(pidFile);
  });

  it(`SIGUSR2 under load (${CLIENTS} clients, ${DURATION_MS / 1000} s): no failed connection; pid_file then names a new live master that serves (and reloads); the old master exits 0`, { timeout: 40000 }, async () => {
    echo ??= await startEcho();
    srv = await startServer({ workers: 2, set: { log_level: 'info', pid_file: pidFile, drain_timeout: 5, shutdown_timeout: 3 } });
    const oldPid = srv.pid;
    let oldExitAt = null;
    srv.exitPromise.then(() => { oldExitAt = Date.now(); });
    const oldWorkers = await waitWorkers(oldPid, 2);
    assert.equal(readPid(pidFile), oldPid, 'pid_file before the upgrade');

    let usr2At = null;
    const usr2 = (async () => {
      await sleep(USR2_AT_MS);
      usr2At = Date.now();
      process.kill(oldPid, 'SIGUSR2');
    })();
    const stats = await runLoad({ port: srv.port, target: echo.target, token: srv.token, clients: CLIENTS, durationMs: DURATION_MS });
    await usr2;
    const failed = stats.failedConnects + stats.brokenTunnels;
    console.log(`upgrade: tunnels=${stats.tunnels} failed_connections=${failed} (connect=${stats.failedConnects} mid-tunnel=${stats.brokenTunnels}) corrupted_bytes=${stats.corruptedBytes}`);
    if (stats.errors.length) console.log(`first errors:\n  ${stats.errors.join('\n  ')}`);

    const started = srv.lines.find((l) => /binary upgrade: new master started, pid \d+/.test(l));
    assert.ok(started, `the old master did not start a new one\n${srv.dumpLog(30)}`);
    const newPid = Number(/pid (\d+)/.exec(started.replace(/^.*?ech3\[\d+\]: /, ''))[1]);
    extraPids.add(newPid);
    await srv.waitForLine(new RegExp(`ech3\\[${newPid}\\]: listening on 127\\.0\\.0\\.1:${srv.port}\\b`), 5000);
    await srv.waitForLine(new RegExp(`ech3\\[${oldPid}\\]: the new master took over`), 5000);
    const newWorkers = await waitWorkers(newPid, 2);
    for (const p of newWorkers) extraPids.add(p);

    assert.equal(stats.corruptedBytes, 0, `corrupted bytes during the upgrade:\n${stats.errors.join('\n')}`);
    assert.equal(failed, 0, `${failed} failed connections (connect=${stats.failedConnects}, mid-tunnel=${stats.brokenTunnels}) over ${stats.tunnels} tunnels:\n${stats.errors.join('\n')}\n--- server log ---\n${srv.dumpLog(30)}`);
    assert.ok(stats.tunnels > 100, `only ${stats.tunnels} tunnels completed`);

    // the old master drains (its tunnels were short) and exits 0
    let timer;
    const ex = await Promise.race([srv.exitPromise, new Promise((r) => { timer = setTimeout(() => r(null), 5000 + 3000 + 1000); })]);
    clearTimeout(timer);
    console.log(`upgrade: SIGUSR2 at ${USR2_AT_MS} ms; old master ${oldPid} exited ${ex ? `${oldExitAt - usr2At} ms after it code=${ex.code} signal=${ex.signal}` : 'NOT'}; new master ${newPid}, workers ${newWorkers.join(',')}`);
    assert.notEqual(ex, null, `the old master did not exit\n${srv.dumpLog(20)}`);
    assert.equal(ex.signal, null, `the old master was killed by ${ex.signal}`);
    assert.equal(ex.code, 0, 'exit code of the old master');
    assert.notEqual(await waitGone(oldWorkers, 2000), null, 'an old worker outlived the old master');

    // pid_file names the new master, which is alive and serves
    assert.ok(existsSync(pidFile), 'pid_file was removed by the exiting old master');
    assert.equal(readPid(pidFile), newPid, 'pid_file after the upgrade');
    assert.notEqual(newPid, oldPid);
    assert.ok(isRunningEch3(newPid), `the new master ${newPid} is not running`);
    for (let i = 0; i < 6; i++) {
      const t = await openTunnel(srv.port, echo.target, { token: srv.token });
      assert.equal(await echoRound(t), 0, `tunnel ${i} through the new master corrupted`);
      await t.sendText('CLOSE');
      assert.equal((await t.waitClose(3000)).code, 1000);
    }
    assert.deepEqual(childPids(newPid), newWorkers, 'the new master\'s workers changed while serving');

    // the new master reloads on the inherited sockets like the first one
    process.kill(newPid, 'SIGHUP');
    await srv.waitForLine(new RegExp(`ech3\\[${newPid}\\]: reloaded: generation`), 5000);
    await waitGone(newWorkers, 3000);
    const reloadedWorkers = await waitWorkers(newPid, 2);
    for (const p of reloadedWorkers) extraPids.add(p);
    const tr = await openTunnel(srv.port, echo.target, { token: srv.token });
    assert.equal(await echoRound(tr), 0, 'tunnel after reloading the new master corrupted');
    tr.terminate();

    // the new master answers signals too: a graceful stop ends it and its workers
    const t0 = Date.now();
    process.kill(newPid, 'SIGTERM');
    const gone = await waitGone([newPid, ...reloadedWorkers], 3000 + 3000);
    assert.notEqual(gone, null, `the new master or its workers still run ${Date.now() - t0} ms after SIGTERM`);
    await srv.waitForLine(new RegExp(`ech3\\[${newPid}\\]: stopped`), 2000); // the new master's own graceful stop
  });

  it('SIGUSR2 when the new binary cannot start (config file broken meanwhile): "binary upgrade failed" logged, the old master keeps serving and keeps pid_file; a retry after the fix works', { timeout: 30000 }, async () => {
    const cfg = tmpPath('upgrade.cfg');
    const pidFile2 = tmpPath('ech3-2.pid');
    const good = 'token = "upgrade-token";\ndrain_timeout = 5;\nshutdown_timeout = 3;\n';
    writeFileAtomic(cfg, good);
    echo ??= await startEcho();
    const s2 = await startServer({ workers: 1, token: null, args: ['-c', cfg], set: { log_level: 'info', pid_file: pidFile2 } });
    try {
      const oldPid = s2.pid;
      const [w] = await waitWorkers(oldPid, 1);
      const t = await openTunnel(s2.port, echo.target, { token: 'upgrade-token' });
      assert.equal(await echoRound(t), 0);

      writeFileAtomic(cfg, `${good}no_such_setting_xyz = 1;\n`);
      process.kill(oldPid, 'SIGUSR2');
      const failLine = await s2.waitForLine(/binary upgrade failed/, 5000);
      console.log(`upgrade: broken config: ${failLine.replace(/^.*?ech3\[\d+\]: /, '')}`);
      assert.match(failLine, new RegExp(`ech3\\[${oldPid}\\]`), 'the failure is logged by the old master');
      await sleep(200);
      assert.equal(s2.exited, null, 'the old master exited after a failed upgrade');
      assert.equal(readPid(pidFile2), oldPid, 'pid_file changed by a failed upgrade');
      assert.deepEqual(childPids(oldPid), [w], 'the old master\'s workers changed after a failed upgrade');
      assert.ok(t.open, 'the open tunnel was closed by a failed upgrade');
      assert.equal(await echoRound(t), 0, 'open tunnel corrupted after a failed upgrade');
      const t2 = await openTunnel(s2.port, echo.target, { token: 'upgrade-token' });
      assert.equal(await echoRound(t2), 0, 'new tunnel after a failed upgrade corrupted');
      t2.terminate();

      // fixed: the retry works
      writeFileAtomic(cfg, good);
      process.kill(oldPid, 'SIGUSR2');
      await s2.waitForLine(new RegExp(`ech3\\[${oldPid}\\]: the new master took over`), 5000);
      const newPid = readPid(pidFile2);
      extraPids.add(newPid);
      assert.notEqual(newPid, oldPid, 'pid_file after the retried upgrade');
      const nw = await waitWorkers(newPid, 1);
      for (const p of nw) extraPids.add(p);
      assert.equal(await echoRound(t), 0, 'tunnel on the old master corrupted during the handover');
      const t3 = await openTunnel(s2.port, echo.target, { token: 'upgrade-token' });
      assert.equal(await echoRound(t3), 0);
      t3.terminate();
      t.terminate();
      await s2.exitPromise;
      process.kill(newPid, 'SIGTERM');
      assert.notEqual(await waitGone([newPid, ...nw], 6000), null, 'the new master did not stop');
    } finally {
      await s2.stop(1000);
      rmQuiet(cfg);
      rmQuiet(pidFile2);
    }
  });
});
