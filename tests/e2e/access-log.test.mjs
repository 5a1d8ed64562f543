// The access line written when a tunnel ends.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startTarget } from './lib/targets.mjs';

const T = { timeout: 15000 };

describe('access log line', () => {
  let srv;
  let tgt;
  before(async () => {
    srv = await startServer({ set: { log_level: 'info' } });
    // reads 10 + 1000 bytes, answers 300 bytes and closes
    tgt = await startTarget({
      onConnection: (c) => {
        c.socket.on('data', () => {
          if (c.length >= 1010 && !c.answered) { c.answered = true; c.socket.end(Buffer.alloc(300, 0x61)); }
        });
      },
    });
  });
  after(async () => { await srv?.stop(); await tgt?.close(); });

  it('client=IP:PORT user=- target=HOST:PORT up=N down=N dur_ms=N end=...', T, async () => {
    const t = await openTunnel(srv.port, tgt.target, { first: 'first-data' });
    const clientPort = t.ws._socket.localPort;
    await t.sendBinary(Buffer.alloc(1000, 0x62));
    const { bytes, text } = await t.readUntilText(5000);
    assert.equal(bytes.length, 300);
    assert.equal(text, 'CLOSE');
    await t.waitClose(5000);
    const line = await srv.waitForLine(new RegExp(`access.*client=127\\.0\\.0\\.1:${clientPort}\\b`), 5000);
    assert.match(line, /ech3\[\d+\]/);
    assert.match(line, /\buser=-(\s|$)/, line);
    assert.match(line, new RegExp(`\\btarget=127\\.0\\.0\\.1:${tgt.port}\\b`), line);
    assert.match(line, /\bup=1010\b/, `up counts client-to-target bytes incl. first data: ${line}`);
    assert.match(line, /\bdown=300\b/, line);
    assert.match(line, /\bdur_ms=\d+\b/, line);
    assert.match(line, /\bend=\S+/, line);
    assert.match(line, /\bc=[0-9a-f]+\b/, line);
  });
});
