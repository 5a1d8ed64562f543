// first_data_base64: auto (default), off, on.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startSink } from './lib/targets.mjs';

const T = { timeout: 15000 };

async function firstDataSeen(srv, sink, first, expectedLen) {
  const n = sink.conns.length;
  const t = await openTunnel(srv.port, sink.target, { first });
  const c = await sink.waitConnection(n);
  await t.sendText('CLOSE');
  await c.waitEof(5000);
  t.terminate();
  const got = c.data();
  if (expectedLen !== undefined) assert.equal(got.length, expectedLen, `target got ${JSON.stringify(got.toString('latin1'))}`);
  return got;
}

const HTTP_REQ = 'GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\n\r\n';

describe('first_data_base64=auto (default)', () => {
  let srv;
  let sink;
  before(async () => { srv = await startServer(); sink = await startSink(); });
  after(async () => { await srv?.stop(); await sink?.close(); });

  it('valid base64 is decoded', T, async () => {
    const got = await firstDataSeen(srv, sink, Buffer.from('hello world').toString('base64'));
    assert.equal(got.toString(), 'hello world');
  });

  it('valid base64 of random binary is decoded byte-exact', T, async () => {
    const bin = randomBytes(300);
    const got = await firstDataSeen(srv, sink, bin.toString('base64'));
    assert.deepEqual(got, bin);
  });

  it('a raw HTTP request is sent as is', T, async () => {
    const got = await firstDataSeen(srv, sink, HTTP_REQ);
    assert.equal(got.toString('latin1'), HTTP_REQ);
  });

  it('not decoded: length not a multiple of 4', T, async () => {
    assert.equal((await firstDataSeen(srv, sink, 'aGVsbG8')).toString(), 'aGVsbG8');
  });

  it('not decoded: non-zero trailing bits', T, async () => {
    // "aGVsbG8=" is "hello"; "aGVsbG9=" has non-zero bits after the last byte.
    assert.equal((await firstDataSeen(srv, sink, 'aGVsbG9=')).toString(), 'aGVsbG9=');
  });

  it('not decoded: padding in the middle', T, async () => {
    assert.equal((await firstDataSeen(srv, sink, 'aGV=bG8=')).toString(), 'aGV=bG8=');
  });

  it('not decoded: characters outside the alphabet', T, async () => {
    assert.equal((await firstDataSeen(srv, sink, 'aGVs bG8=')).toString(), 'aGVs bG8=');
    assert.equal((await firstDataSeen(srv, sink, 'aGVsbG8*')).toString(), 'aGVsbG8*');
  });
});

describe('first_data_base64=off (via ECH3_FIRST_DATA_BASE64)', () => {
  let srv;
  let sink;
  before(async () => {
    srv = await startServer({ env: { ECH3_FIRST_DATA_BASE64: 'off' } });
    sink = await startSink();
  });
  after(async () => { await srv?.stop(); await sink?.close(); });

  it('valid base64 is sent as is', T, async () => {
    const b64 = Buffer.from('hello world').toString('base64');
    assert.equal((await firstDataSeen(srv, sink, b64)).toString(), b64);
  });
});

describe('first_data_base64=on (via --set)', () => {
  let srv;
  let sink;
  before(async () => {
    srv = await startServer({ set: { first_data_base64: 'on' } });
    sink = await startSink();
  });
  after(async () => { await srv?.stop(); await sink?.close(); });

  it('valid base64 is decoded', T, async () => {
    const got = await firstDataSeen(srv, sink, Buffer.from('decode me please').toString('base64'));
    assert.equal(got.toString(), 'decode me please');
  });
});
