// A refused reload leaves the listening sockets alone: after a reload that asked for an extra
// metrics address already in use (so the reload is refused), a worker killed afterwards is
// replaced by one that still accepts on the original sockets.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import {
  echoRound, childPids, waitWorkers, waitFor, tmpPath, writeFileAtomic, rmQuiet, sleep,
} from './lib/lifecycle.mjs';

describe('lifecycle: refused reload keeps the sockets', () => {
  let srv; let echo; let busy; let cfg;
  after(async () => { await srv?.stop(); await echo?.close(); busy?.close(); if (cfg) rmQuiet(cfg); });

  it('a reload refused for a busy address, then a worker crash: the replacement still serves', { timeout: 30000 }, async () => {
    echo = await startEcho();
    busy = net.createServer();
    await new Promise((r) => busy.listen(0, '127.0.0.1', r));
    const busyPort = busy.address().port;
    cfg = tmpPath('refused-sockets.cfg');
    writeFileAtomic(cfg, 'log_level = "info";\n');
    srv = await startServer({ workers: 1, args: ['-c', cfg] });
    const [w0] = await waitWorkers(srv.pid, 1);
    const t = await openTunnel(srv.port, echo.target);
    assert.equal(await echoRound(t), 0);

    // The new file adds a listener on an address that is taken (no SO_REUSEPORT there); the
    // running listen address comes from --listen and is reused by the reload.
    writeFileAtomic(cfg, `log_level = "info";\nmetrics_listen = "127.0.0.1:${busyPort}";\n`);
    process.kill(srv.pid, 'SIGHUP');
    await srv.waitForLine(/reload refused/, 5000);

    process.kill(w0, 'SIGKILL');
    await waitFor(() => { const c = childPids(srv.pid); return c.length === 1 && c[0] !== w0 ? c : null; },
      { timeout: 3000, what: 'a replacement worker' });
    await sleep(200);
    for (let i = 0; i < 5; i++) {
      const t2 = await openTunnel(srv.port, echo.target);
      assert.equal(await echoRound(t2), 0, 'the replacement worker does not serve');
      t2.close();
    }
  });
});
