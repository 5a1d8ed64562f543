// 200 concurrent tunnels with --workers 4: all byte-exact, served by more than one worker.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho, sha256 } from './lib/targets.mjs';

const N = 200;
const SIZE = 16 * 1024;

describe(`${N} concurrent tunnels, --workers 4`, () => {
  let srv;
  let echo;
  before(async () => {
    srv = await startServer({ workers: 4, set: { log_level: 'info' } });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); });

  it('all byte-exact; access lines show more than one worker pid', { timeout: 60000 }, async () => {
    const one = async (i) => {
      const buf = randomBytes(SIZE);
      const t = await openTunnel(srv.port, echo.target, { timeout: 15000, replyTimeout: 15000 });
      try {
        const reader = t.readBytes(SIZE, 30000);
        await t.sendChunked(buf, 4096);
        const got = await reader;
        assert.equal(sha256(got), sha256(buf), `tunnel ${i} corrupted`);
        await t.sendText('CLOSE');
        const { code } = await t.waitClose(10000);
        assert.equal(code, 1000, `tunnel ${i} close code`);
      } finally {
        t.terminate();
      }
    };
    const results = await Promise.allSettled(Array.from({ length: N }, (_, i) => one(i)));
    const failed = results.filter((r) => r.status === 'rejected');
    assert.equal(failed.length, 0, `${failed.length}/${N} tunnels failed; first: ${failed[0]?.reason?.stack}`);

    const re = new RegExp(`access.*target=127\\.0\\.0\\.1:${echo.port}\\b`);
    const lines = await srv.waitForLines(re, N, 15000);
    assert.equal(lines.length, N, 'one access line per tunnel');
    const pids = new Set();
    for (const l of lines) {
      const pm = /ech3\[(\d+)\]/.exec(l);
      assert.ok(pm, `access line without ech3[PID]: ${l}`);
      pids.add(Number(pm[1]));
      assert.match(l, new RegExp(`\\bup=${SIZE}\\b`), l);
      assert.match(l, new RegExp(`\\bdown=${SIZE}\\b`), l);
    }
    assert.ok(pids.size > 1, `all ${N} tunnels served by one process: ${[...pids].join(',')}`);
    assert.ok(pids.size <= 4, `more pids than workers: ${[...pids].join(',')}`);
  });
});
