// IPv6: [::1] targets and a [::1] listen address.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho, haveIPv6Loopback } from './lib/targets.mjs';

const T = { timeout: 15000 };
const v6 = await haveIPv6Loopback();

describe('IPv6 loopback', { skip: v6 ? false : 'no IPv6 loopback (::1) on this host' }, () => {
  let srv;
  let echo6;
  before(async () => {
    srv = await startServer({ listen: ['127.0.0.1:0', '[::1]:0'] });
    echo6 = await startEcho({ host: '::1' });
  });
  after(async () => { await srv?.stop(); await echo6?.close(); });

  it('reports a listening line for each address', T, () => {
    assert.ok(srv.addrs.has('127.0.0.1'), [...srv.addrs.keys()].join(','));
    assert.ok(srv.addrs.has('::1'), `no "listening on [::1]:PORT" line; addrs: ${[...srv.addrs.keys()].join(',')}`);
  });

  it('CONNECT:[::1]:port from the IPv4 listener', T, async () => {
    const t = await openTunnel(srv.port, echo6.target);
    const buf = randomBytes(5000);
    await t.sendBinary(buf);
    assert.deepEqual(await t.readBytes(buf.length), buf);
    t.close();
  });

  it('CONNECT:[::1]:port from the [::1] listener', T, async () => {
    const port = srv.addrs.get('::1');
    assert.ok(port, 'no [::1] listener port');
    const t = await openTunnel(port, echo6.target, { host: '::1', first: 'v6-first' });
    await t.sendBinary(Buffer.from('-more'));
    assert.equal((await t.readBytes(13)).toString(), 'v6-first-more');
    t.close();
  });
});
