// Oversized and garbage tokens: a 1 MiB token in a header or the query is answered 431 before any
// auth (and the worker survives); a token over jwt.max_token_bytes that fits in the header limit is
// 401 token_too_long; base64url garbage is 401 malformed; something that is not JWT-shaped at all
// is just a wrong static token (401 without a reason).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { openTunnel } from './lib/client.mjs';
import { startEcho } from './lib/targets.mjs';
import { childPids, waitWorkers } from './lib/lifecycle.mjs';
import {
  hmacSecret, makeJwt, claims, b64u, rawUpgrade, assert401, expectRefused, CARRIERS,
  assertNoSecretsLogged, remember,
} from './lib/jwt.mjs';

const T = { timeout: 30000 };
const MiB = 1024 * 1024;

async function works(srv, echo, tok, carrier = 'bearer') {
  const t = await openTunnel(srv.port, echo.target, CARRIERS[carrier](tok));
  await t.sendBinary(Buffer.from('still-serving'));
  assert.equal((await t.readBytes(13)).toString(), 'still-serving');
  t.close();
}

describe('jwt size: a 1 MiB token (default max_header_bytes 8192)', () => {
  let srv;
  let echo;
  const secret = hmacSecret();
  // a JWT-shaped 1 MiB token: a real header and a huge payload, signed
  const huge = makeJwt({ key: secret, payload: claims('huge', { pad: 'A'.repeat(MiB) }) });

  before(async () => {
    srv = await startServer({ env: { ECH3_JWT_SECRET: secret }, set: { log_level: 'info' } });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); });

  it('is never accepted, the worker survives and the server keeps serving (every carrier)', T, async () => {
    assert.ok(huge.length > MiB);
    // workers fork right after "listening on": wait for the one this server has
    const workers = await waitWorkers(srv.pid, 1);
    assert.equal(workers.length, 1, `workers: ${workers}`);
    for (const carrier of ['bearer', 'protocol', 'query']) {
      const res = await rawUpgrade(srv.port, huge, carrier, { timeout: 10000 });
      assert.notEqual(res.status, 101, `a 1 MiB token via ${carrier} was accepted`);
      assert.ok(res.status === 431 || res.status === null,
        `1 MiB via ${carrier}: expected 431 (or a reset), got ${res.statusLine}`);
      await works(srv, echo, makeJwt({ key: secret, payload: claims(`after-huge-${carrier}`) }));
    }
    assert.equal(srv.exited, null, 'the master exited');
    assert.deepEqual(childPids(srv.pid), workers, 'the worker was replaced (crashed?)');
    assert.ok(!srv.lines.some((l) => /crash|signal|exited|abort/i.test(l)), `crash in the log:\n${srv.dumpLog()}`);
  });

  it('is answered with an HTTP 431 (the client must be able to read it) — every carrier, 60 times each', T, async () => {
    const got = [];
    for (const carrier of ['bearer', 'protocol', 'query']) {
      for (let i = 0; i < 60; i++) {
        const res = await rawUpgrade(srv.port, huge, carrier, { timeout: 10000 });
        got.push(`${carrier}#${i}: ${res.statusLine ?? `no response (${res.error?.code ?? 'closed'})`}`);
      }
    }
    const bad = got.filter((g) => !/ 431 /.test(g));
    assert.deepEqual(bad, [], `the 431 did not reach the client in ${bad.length}/${got.length} attempts:\n${bad.join('\n')}\n` +
      '(the server closes right after the 431 with most of the request unread, so the kernel sends a RST ' +
      'that destroys the response; a lingering close — shut down the write side, read and discard for a while — fixes this)');
  });

  it('a header just over max_header_bytes (9 KiB) → 431 Request Header Fields Too Large', T, async () => {
    const tok = makeJwt({ key: secret, payload: claims('nine-k', { pad: 'B'.repeat(9 * 1024) }) });
    for (const carrier of ['bearer', 'protocol', 'query']) {
      const res = await rawUpgrade(srv.port, tok, carrier);
      assert.equal(res.status, 431, `${carrier}: ${res.statusLine}`);
    }
    await works(srv, echo, makeJwt({ key: secret, payload: claims('after-9k') }));
  });

  it('no server log line contains a token or the secret', T, async () => {
    assertNoSecretsLogged(srv, [secret]);
  });
});

describe('jwt size: jwt.max_token_bytes (8192) below max_header_bytes (65536)', () => {
  let srv;
  let echo;
  const secret = hmacSecret();
  before(async () => {
    srv = await startServer({ env: { ECH3_JWT_SECRET: secret }, set: { log_level: 'info', max_header_bytes: 65536 } });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); });

  it('a validly signed 9000-byte token → 401 token_too_long (every carrier)', T, async () => {
    const tok = makeJwt({ key: secret, payload: claims('big', { pad: 'C'.repeat(9000) }) });
    assert.ok(tok.length > 8192);
    for (const carrier of ['bearer', 'protocol', 'query']) {
      await expectRefused(srv, tok, 'token_too_long', { carrier, user: '-', what: carrier });
    }
  });

  it('a 60 KiB JWT-shaped token → 401 token_too_long, nothing parsed', T, async () => {
    const tok = remember(`${b64u('{"alg":"HS256"}')}.${'A'.repeat(60 * 1024)}.${'B'.repeat(43)}`);
    await expectRefused(srv, tok, 'token_too_long');
  });

  it('a token just under the limit (about 8000 bytes) is accepted', T, async () => {
    let pad = 5800;
    let tok;
    do { tok = makeJwt({ key: secret, payload: claims('just-under', { pad: 'D'.repeat(pad) }) }); pad += 50; } while (tok.length < 7900);
    assert.ok(tok.length <= 8192, `${tok.length}`);
    await works(srv, echo, tok);
  });

  it('no server log line contains a token or the secret', T, async () => {
    assertNoSecretsLogged(srv, [secret]);
  });
});

describe('jwt garbage', () => {
  let srv;
  let echo;
  const secret = hmacSecret();
  before(async () => {
    srv = await startServer({ env: { ECH3_JWT_SECRET: secret }, set: { log_level: 'info' } });
    echo = await startEcho();
  });
  after(async () => { await srv?.stop(); await echo?.close(); });

  it('base64url garbage in three segments → 401 malformed (every carrier)', T, async () => {
    const cases = [
      'abc.def.ghi',
      'AAAA.BBBB.CCCC',
      `${b64u(Buffer.from([0xff, 0xfe, 0x00, 0x01]))}.${b64u(Buffer.from('garbage'))}.${b64u(Buffer.alloc(32, 7))}`,
      `${b64u('{"alg":"HS256"}')}.${b64u('not json')}.${b64u(Buffer.alloc(32))}`,
      `${b64u('{"alg":"HS256"}')}.${b64u('[1,2]')}.${b64u(Buffer.alloc(32))}`,                 // payload not an object
      `${b64u('["HS256"]')}.${b64u('{}')}.${b64u(Buffer.alloc(32))}`,                          // header not an object
      `${b64u('{"alg":"HS256"}x')}.${b64u('{}')}.${b64u(Buffer.alloc(32))}`,                   // trailing bytes
      `${b64u(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]))}.${b64u('{}')}.x`, // invalid UTF-8
      `${b64u('{"alg":"HS256"}')}.${b64u('{}')}.A`,                                            // 1 char: impossible length
      `${b64u('{"alg":"HS256"}')}.${b64u('{}')}.AB`,                                           // non-zero unused bits
      `${b64u('{"alg":"HS256"}')}A.${b64u('{}')}.${b64u(Buffer.alloc(32))}`,                   // bad header length
    ];
    for (const g of cases) {
      for (const carrier of ['bearer', 'protocol', 'query']) {
        const res = await rawUpgrade(srv.port, g, carrier);
        assert401(res, 'malformed', `${JSON.stringify(g)} via ${carrier}`);
      }
    }
  });

  it('not JWT-shaped (standard base64 with + / =, four segments, empty segment) → plain 401 without reason', T, async () => {
    const tok = makeJwt({ key: secret, payload: claims('padded') });
    const [h, p, s] = tok.split('.');
    for (const g of [
      `${Buffer.from(Buffer.from(h, 'base64url')).toString('base64')}.${Buffer.from(Buffer.from(p, 'base64url')).toString('base64')}.${Buffer.from(Buffer.from(s, 'base64url')).toString('base64')}`,
      `${h}.${p}.${s}.${s}`,
      `${h}..${s}`,
      `.${p}.${s}`,
      'a+b/c=.d.e',
    ]) {
      const res = await rawUpgrade(srv.port, g, 'bearer');
      assert401(res, null, JSON.stringify(g));
    }
  });

  it('the server still serves after all that', T, async () => {
    assert.equal(srv.exited, null);
    await works(srv, echo, makeJwt({ key: secret, payload: claims('after-garbage') }), 'query');
  });

  it('no server log line contains a token or the secret', T, async () => {
    assertNoSecretsLogged(srv, [secret]);
  });
});
