// Admission: max_conn_per_subject counts open tunnels per JWT subject (sub), whatever address they
// come from. alice's 3rd concurrent tunnel gets 429 while bob still gets in; static-token clients
// have no subject and are not counted. Tokens are minted with `ech3 token --sub NAME` (the secret in
// ECH3_JWT_SECRET) and by hand (HS256 with node:crypto).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startServer, ECH3_BIN, recordSecret } from './lib/server.mjs';
import { startEcho } from './lib/targets.mjs';
import { echoRound } from './lib/lifecycle.mjs';
import {
  BODY_CONN, attempt, attemptMany, tally, refusalProblems, closeAll, closeTunnels, randomSecret, mintHS256,
} from './lib/admission.mjs';

/** `ech3 token --sub NAME` with the secret in the environment only. */
function ech3Token(secret, sub) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ECH3_') && k !== 'TOKEN'));
  env.ECH3_JWT_SECRET = secret;
  return recordSecret(execFileSync(ECH3_BIN, ['token', '--sub', sub, '--ttl', '3600'], { env, timeout: 5000, encoding: 'utf8' }).trim());
}

describe('admission: max_conn_per_subject=2 (JWT)', () => {
  let srv;
  let echo;
  const secret = randomSecret();
  const held = [];
  after(async () => {
    closeAll(held);
    await srv?.stop();
    await echo?.close();
  });

  it("alice's 3rd concurrent tunnel → 429 limit=per_subject; bob still gets in", { timeout: 30000 }, async () => {
    echo = await startEcho();
    srv = await startServer({ workers: 2, set: { 'jwt.secret': secret, max_conn_per_subject: 2 } });
    const alice = ech3Token(secret, 'alice');
    const bob = mintHS256(secret, 'bob');
    assert.match(alice, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'ech3 token printed no JWT');

    const a = await attemptMany(2, () => attempt(srv.port, echo.target, { token: alice }));
    held.push(...a);
    assert.equal(a.filter((r) => r.ok).length, 2, `alice, first 2: ${tally(a)} ${a.map((r) => r.body).join(' ')}`);
    await srv.waitForLines(/tunnel open client=\S+ user=alice /, 2, 3000);
    // the 3rd, even from another address
    const a3 = await attempt(srv.port, echo.target, { token: alice, localAddress: '127.0.0.2' });
    held.push(a3);
    console.log(`alice: 2 admitted, 3rd (from 127.0.0.2): ${tally([a3])}`);
    assert.deepEqual(refusalProblems(a3, { body: BODY_CONN }), [], JSON.stringify(a3));
    await srv.waitForLine(/admission refused client=127\.0\.0\.2:\d+ user=alice limit=per_subject/, 3000);

    // bob: his own 2, and no more
    const b = await attemptMany(3, () => attempt(srv.port, echo.target, { token: bob }));
    held.push(...b);
    console.log(`bob, 3 at once: ${tally(b)}`);
    assert.equal(b.filter((r) => r.ok).length, 2, tally(b));
    for (const r of b.filter((x) => x.ok)) assert.equal(await echoRound(r.tunnel, 128), 0);
    await srv.waitForLine(/admission refused client=\S+ user=bob limit=per_subject/, 3000);

    // static-token clients have no subject: not limited per subject
    const s = await attemptMany(3, () => attempt(srv.port, echo.target));
    held.push(...s);
    console.log(`static token, 3 at once: ${tally(s)}`);
    assert.equal(s.filter((r) => r.ok).length, 3, tally(s));

    // alice closes one: she gets exactly one back
    await closeTunnels([a[0].tunnel]);
    let again;
    for (let i = 0; i < 40; i++) { // the slot is released right after the close: bounded retry
      again = await attempt(srv.port, echo.target, { token: alice });
      held.push(again);
      if (again.ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(again.ok, `alice after closing one: ${tally([again])}`);
    const over = await attempt(srv.port, echo.target, { token: alice });
    held.push(over);
    assert.equal(over.status, 429, `alice over the limit again: ${tally([over])}`);
  });

  // The admission table keeps the whole subject (long ones as hash + length): distinct subjects are
  // distinct, however long and whatever characters they use.
  it('distinct long subjects sharing their first 63 bytes have separate counts', { timeout: 15000 }, async () => {
    assert.ok(srv, 'the first test did not run');
    const base = `tenant-${'x'.repeat(60)}`; // 67 bytes in common
    const t1 = mintHS256(secret, `${base}-one`);
    const t2 = mintHS256(secret, `${base}-two`);
    const r1 = await attemptMany(2, () => attempt(srv.port, echo.target, { token: t1 }));
    held.push(...r1);
    const r2 = await attemptMany(2, () => attempt(srv.port, echo.target, { token: t2 }));
    held.push(...r2);
    console.log(`long subjects: …-one ${tally(r1)}; …-two ${tally(r2)}`);
    assert.equal(r1.filter((r) => r.ok).length, 2, `…-one: ${tally(r1)}`);
    assert.equal(r2.filter((r) => r.ok).length, 2, `…-two: ${tally(r2)} — counted together with …-one`);
  });

  it('distinct non-ASCII subjects of the same length have separate counts', { timeout: 15000 }, async () => {
    assert.ok(srv, 'the first test did not run');
    const t1 = mintHS256(secret, '张三');
    const t2 = mintHS256(secret, '李四');
    const r1 = await attemptMany(2, () => attempt(srv.port, echo.target, { token: t1 }));
    held.push(...r1);
    const r2 = await attemptMany(2, () => attempt(srv.port, echo.target, { token: t2 }));
    held.push(...r2);
    console.log(`non-ASCII subjects: 张三 ${tally(r1)}; 李四 ${tally(r2)}`);
    assert.equal(r1.filter((r) => r.ok).length, 2, `张三: ${tally(r1)}`);
    assert.equal(r2.filter((r) => r.ok).length, 2, `李四: ${tally(r2)} — counted together with 张三`);
  });
});
