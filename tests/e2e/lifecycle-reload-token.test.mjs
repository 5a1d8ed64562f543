// Reloading the config file: a changed token applies to new connections at once while tunnels
// opened with the old token keep relaying; a broken file (syntax error, unknown key, bad value) is
// refused with "reload refused" and the running configuration keeps serving.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import { rawRequest, upgradeRequest } from './lib/raw.mjs';
import {
  echoRound, childPids, waitWorkers, countLines, waitNewLine, tmpPath, writeFileAtomic, rmQuiet, sleep,
} from './lib/lifecycle.mjs';

const OLD = 'lifecycle-old-token';
const NEW = 'lifecycle-new-token';

const cfgText = (token, extra = '') => `# written by lifecycle-reload-token.test.mjs\ntoken = "${token}";\ndrain_timeout = 30;\n${extra}`;

async function status(port, token) {
  const res = await rawRequest(port, upgradeRequest({ token }).request, { timeout: 3000 });
  return res.status;
}

/** SIGHUP, wait for the reload outcome line; returns 'reloaded' or the refusal line. */
async function hup(srv) {
  const nOk = countLines(srv, /reloaded: generation/);
  const nBad = countLines(srv, /reload refused/);
  process.kill(srv.pid, 'SIGHUP');
  const deadline = Date.now() + 5000;
  for (;;) {
    if (countLines(srv, /reloaded: generation/) > nOk) return 'reloaded';
    const bad = srv.lines.filter((l) => /reload refused/.test(l));
    if (bad.length > nBad) return bad[bad.length - 1];
    if (Date.now() > deadline) throw new Error(`no reload outcome logged within 5 s after SIGHUP\n${srv.dumpLog(20)}`);
    await sleep(20);
  }
}

describe('lifecycle: reload with a new token, and with broken config files', () => {
  const servers = [];
  const files = [];
  let echo;
  after(async () => {
    for (const s of servers) await s.stop();
    for (const f of files) rmQuiet(f);
    await echo?.close();
  });

  async function start() {
    echo ??= await startEcho();
    const cfg = tmpPath('token.cfg');
    files.push(cfg);
    writeFileAtomic(cfg, cfgText(OLD));
    // token: null -> no TOKEN env, so the file's token is the one in force
    const srv = await startServer({ workers: 2, token: null, args: ['-c', cfg], set: { log_level: 'info' } });
    servers.push(srv);
    await waitWorkers(srv.pid, 2);
    return { srv, cfg };
  }

  it('a new token in the file: new connections need it (old -> 401), a tunnel opened with the old token keeps relaying', { timeout: 20000 }, async () => {
    const { srv, cfg } = await start();
    assert.equal(await status(srv.port, OLD), 101, 'old token before the reload');
    assert.equal(await status(srv.port, NEW), 401, 'new token before the reload');
    const old = await openTunnel(srv.port, echo.target, { token: OLD });
    assert.equal(await echoRound(old), 0);

    writeFileAtomic(cfg, cfgText(NEW));
    assert.equal(await hup(srv), 'reloaded', 'a valid config file was not reloaded');

    assert.equal(await status(srv.port, OLD), 401, 'the old token is still accepted after the reload');
    assert.equal(await status(srv.port, NEW), 101, 'the new token is refused after the reload');
    const fresh = await openTunnel(srv.port, echo.target, { token: NEW });
    assert.equal(await echoRound(fresh), 0, 'new-token tunnel corrupted');
    for (let i = 0; i < 3; i++) {
      assert.equal(await echoRound(old, 4096), 0, `old-token tunnel corrupted after the reload (round ${i})`);
      await sleep(100);
    }
    assert.ok(old.open, 'the old-token tunnel was closed by the reload');
    // several connections, so that every new worker is asked
    for (let i = 0; i < 6; i++) assert.equal(await status(srv.port, OLD), 401, `old token accepted on attempt ${i}`);
    old.terminate();
    fresh.terminate();
  });

  const broken = [
    ['a syntax error', (tok) => `token = "${tok}"\ndrain_timeout = = 2;\n`],
    ['an unknown key', (tok) => `${cfgText(tok)}no_such_setting_xyz = 1;\n`],
    ['an out-of-range value', (tok) => `${cfgText(tok)}workers = 100000;\n`],
  ];

  it('a broken or missing file (syntax error, unknown key, out-of-range value, deleted) is refused with "reload refused"; the running config keeps serving', { timeout: 20000 }, async () => {
    const { srv, cfg } = await start();
    const workers = childPids(srv.pid);
    const open = await openTunnel(srv.port, echo.target, { token: OLD });
    assert.equal(await echoRound(open), 0);
    const gensBefore = countLines(srv, /reloaded: generation/);

    for (const [what, text] of broken) {
      // the broken file names a different token: it must not be applied, not even in part
      writeFileAtomic(cfg, text(NEW));
      const outcome = await hup(srv);
      assert.notEqual(outcome, 'reloaded', `a config file with ${what} was accepted on reload`);
      assert.match(outcome, /error/, `the refusal is not logged as an error: ${outcome}`);
      console.log(`reload-token: ${what}: ${outcome.replace(/^.*?ech3\[\d+\]: /, '')}`);
      assert.equal(srv.exited, null, `the master exited after a reload with ${what}`);
      assert.equal(await status(srv.port, OLD), 101, `the running token is refused after a refused reload (${what})`);
      assert.equal(await status(srv.port, NEW), 401, `the broken file's token was applied (${what})`);
      assert.equal(await echoRound(open), 0, `open tunnel corrupted after a refused reload (${what})`);
      const t = await openTunnel(srv.port, echo.target, { token: OLD });
      assert.equal(await echoRound(t), 0);
      t.terminate();
    }
    // the file disappeared
    rmQuiet(cfg);
    const gone = await hup(srv);
    assert.notEqual(gone, 'reloaded', 'a reload with the config file missing was accepted');
    console.log(`reload-token: a missing file: ${gone.replace(/^.*?ech3\[\d+\]: /, '')}`);
    assert.equal(await status(srv.port, OLD), 101, 'the running token is refused after the missing-file reload');

    assert.equal(countLines(srv, /reloaded: generation/), gensBefore, 'a refused reload started a new generation');
    assert.deepEqual(childPids(srv.pid), workers, 'the workers changed although every reload was refused');
    assert.ok(open.open, 'the open tunnel was closed by a refused reload');

    // fixing the file makes the next reload work again
    writeFileAtomic(cfg, cfgText(NEW));
    assert.equal(await hup(srv), 'reloaded', 'the repaired file was not reloaded');
    assert.equal(await status(srv.port, NEW), 101);
    assert.equal(await status(srv.port, OLD), 401);
    assert.equal(await echoRound(open), 0, 'the old tunnel stopped relaying after the good reload');
    open.terminate();
  });
});
