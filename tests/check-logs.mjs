#!/usr/bin/env node
// The secret check: no server log line may contain a secret the tests used.
//
// tests/e2e/lib/server.mjs copies every server's output to its own file under build/test-logs/
// (or $ECH3_TEST_LOG_DIR) and records every secret a server was started with (TOKEN, ECH3_TOKEN,
// ECH3_JWT_SECRET, ECH3_METRICS_TOKEN, --set token= / jwt.secret= / metrics_token=, jwt.secret_file
// contents, the same keys in a -c config file) plus the tokens tests mint (recordSecret()), one per
// line, in build/test-logs/secrets.txt. This script reads every *.log file there and fails if any
// line contains any recorded secret of 8 characters or more. It names the file and line and which
// secret (by its line in secrets.txt and its length), never the secret itself.
//
//   node tests/check-logs.mjs [DIR]     run after the e2e suite (tests/e2e/run.sh clears DIR first)
//
// Exit status: 0 clean; 1 a secret was found, or there is nothing to check (no log files, or no
// recorded secrets: the suite did not run, or server.mjs no longer records).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.resolve(process.argv[2] || process.env.ECH3_TEST_LOG_DIR || path.join(root, 'build', 'test-logs'));
const MIN_LEN = 8;
const MAX_REPORTS = 50;

function die(msg) {
  console.error(`check-logs: ${msg}`);
  console.log('check-logs: 0 passed, 1 failed');
  process.exit(1);
}

let names;
try {
  names = readdirSync(dir);
} catch (e) {
  die(`cannot read ${dir} (${e.code ?? e.message}): run the e2e suite first (tests/e2e/run.sh)`);
}

// secrets: unique, long enough; numbered by their first line in secrets.txt
const secrets = [];
const seen = new Set();
let secretText = '';
try { secretText = readFileSync(path.join(dir, 'secrets.txt'), 'utf8'); } catch { /* none */ }
secretText.split('\n').forEach((s, i) => {
  s = s.replace(/\r$/, '');
  if (s.length >= MIN_LEN && !seen.has(s)) {
    seen.add(s);
    secrets.push({ s, no: i + 1 });
  }
});
// a secret contained in a longer one is found through the shorter one; test the shortest first
secrets.sort((a, b) => a.s.length - b.s.length);

const logs = names.filter((n) => n.endsWith('.log')).sort()
  .filter((n) => { try { return statSync(path.join(dir, n)).isFile(); } catch { return false; } });
if (logs.length === 0) die(`no *.log files in ${dir}: run the e2e suite first (tests/e2e/run.sh)`);
if (secrets.length === 0) die(`no recorded secrets of ${MIN_LEN}+ characters in ${path.join(dir, 'secrets.txt')}`);

let passed = 0;
let failed = 0;
let reports = 0;
let lineCount = 0;
for (const name of logs) {
  const file = path.join(dir, name);
  const lines = readFileSync(file, 'utf8').split('\n');
  let bad = 0;
  lines.forEach((line, i) => {
    if (line === '') return;
    lineCount++;
    for (const { s, no } of secrets) {
      if (line.includes(s)) {
        bad++;
        if (reports++ < MAX_REPORTS) {
          console.error(`${path.relative(process.cwd(), file) || file}:${i + 1}: contains the secret on line ${no} `
            + `of secrets.txt (${s.length} characters)`);
        }
        break;
      }
    }
  });
  if (bad) failed++; else passed++;
}
if (reports > MAX_REPORTS) console.error(`... and ${reports - MAX_REPORTS} more lines`);
console.log(`check-logs: ${logs.length} log files, ${lineCount} lines, ${secrets.length} secrets; `
  + `${failed ? 'secrets found in server logs' : 'no secret in any log'}`);
console.log(`check-logs: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
