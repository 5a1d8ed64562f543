// A throw-away PKI for the TLS tests, made with the `openssl` CLI at test time.
//
//   const pki = makePki();                  // a mkdtemp directory (0700) with a test root CA
//   const a = pki.issue('server-a');        // leaf signed by the CA: SAN IP:127.0.0.1, DNS:localhost
//   const b = pki.issue('dns-only', { san: 'DNS:localhost' });
//   const r = pki.selfSigned('rogue');      // self-signed, same SAN, not signed by the CA
//   const c = pki.issueChained('chained');  // leaf signed by an intermediate; c.cert = leaf + intermediate
//   ... a.cert / a.key are file paths (key files are 0600), a.certPem / a.keyPem their text,
//   a.fingerprint (SHA-256, "AA:BB:..." as node's getPeerCertificate().fingerprint256), a.serial
//   (hex, upper case, as node's getPeerCertificate().serialNumber).
//   pki.cleanup();
//
// Keys are EC P-256 (fast to make). Every private key is recorded as a secret for the log check.
//
// Also here, because the wss:// tests need both: startWsBackend(), the WebSocket echo backend of
// the target_url ws:// and wss:// tests (startWssBackend(cert) runs it on https).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync, rmSync, renameSync } from 'node:fs';
import { X509Certificate, randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import https from 'node:https';
import { WebSocketServer } from 'ws';
import { recordSecret } from './server.mjs';

export const DEFAULT_SAN = 'IP:127.0.0.1,DNS:localhost';

function openssl(args, cwd) {
  try {
    return execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

function describe(dir, name) {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}.key`);
  chmodSync(key, 0o600);
  const certPem = readFileSync(cert, 'utf8');
  const keyPem = readFileSync(key, 'utf8');
  recordSecret(keyPem);
  const x = new X509Certificate(certPem);
  return {
    name,
    cert,
    key,
    certPem,
    keyPem,
    fingerprint: x.fingerprint256,
    serial: x.serialNumber.toUpperCase(),
    subjectAltName: x.subjectAltName,
  };
}

/** Write `text` to `file` through a rename, so a reader never sees half a file. */
export function replaceFile(file, text, mode = 0o600) {
  const tmp = `${file}.tmp-${randomBytes(3).toString('hex')}`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}

export function makePki({ prefix = 'ech3-pki-' } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const days = '2';
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

  const makeCa = (name, cn, signer) => {
    const caExt = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
    if (!signer) {
      openssl(['req', '-x509', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', days,
        '-subj', `/CN=${cn}`, ...caExt], dir);
    } else {
      writeFileSync(path.join(dir, `${name}.ext`),
        'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n');
      openssl(['req', '-new', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${signer}.pem`, '-CAkey', `${signer}.key`,
        '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', days, '-extfile', `${name}.ext`,
        '-out', `${name}.pem`], dir);
    }
    return describe(dir, name);
  };

  const ca = makeCa('ca', 'ech3 e2e test CA');
  let inter = null;

  const signLeaf = (name, { san = DEFAULT_SAN, cn = 'localhost', signer = 'ca' } = {}) => {
    writeFileSync(path.join(dir, `${name}.ext`),
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`);
    openssl(['req', '-new', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${signer}.pem`, '-CAkey', `${signer}.key`,
      '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', days, '-extfile', `${name}.ext`,
      '-out', `${name}.pem`], dir);
    return describe(dir, name);
  };

  return {
    dir,
    ca,
    /** A server certificate signed by the test CA. */
    issue: (name, opts) => signLeaf(name, opts),
    /** A server certificate signed by an intermediate CA; its cert file holds leaf + intermediate. */
    issueChained(name, opts = {}) {
      inter ??= makeCa('intermediate', 'ech3 e2e intermediate CA', 'ca');
      const leaf = signLeaf(name, { ...opts, signer: 'intermediate' });
      const leafOnly = leaf.certPem;
      const chain = leafOnly + inter.certPem;
      writeFileSync(leaf.cert, chain);
      return { ...leaf, certPem: chain, leafPem: leafOnly, intermediate: inter };
    },
    /** A self-signed certificate (not trusted by anything), same SAN by default. */
    selfSigned(name, { san = DEFAULT_SAN, cn = 'localhost' } = {}) {
      openssl(['req', '-x509', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', days,
        '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${san}`], dir);
      return describe(dir, name);
    },
    /** A path in the PKI directory (for files the tests rewrite). */
    file: (name) => path.join(dir, name),
    cleanup() { try { rmSync(dir, { recursive: true, force: true }); } catch { /* ignore */ } },
  };
}

// ---- WebSocket backends for target_url ws:// / wss:// ----

// A WebSocket echo backend (node `ws`) for the target_url ws:// and wss:// tests.
//
// It echoes every message with its type (text stays text, binary stays binary); a text message
// `close-me:<code>` is answered with ws.close(code, 'bye'); `ping-me:<payload>` makes it ping the
// client with that payload. It answers pings itself (autoPong off) with the pong payload
// `backend:<ping payload>`, so a test can tell the backend's pong from one made by the proxy.
// Every connection is recorded: { req, headers, url, offered (subprotocols offered, array),
// protocol (chosen), messages [{ data: Buffer, isBinary }], pings [Buffer], pongs [Buffer],
// closed: Promise<{ code, reason }>, ws }.
//
// chooseProtocol(offeredArray, req) picks the subprotocol (default: the first offered, if any).
// `server` (an https.Server) makes it a wss:// backend.

export async function startWsBackend({ host = '127.0.0.1', server, chooseProtocol, onConnection } = {}) {
  const conns = [];
  const waiters = [];
  const srv = server ?? http.createServer((req, res) => { res.writeHead(426); res.end('websocket only\n'); });
  const wss = new WebSocketServer({
    server: srv,
    autoPong: false,
    perMessageDeflate: false,
    maxPayload: 64 * 1024 * 1024,
    handleProtocols: (offered, req) => {
      const arr = [...offered];
      req.offered = arr;
      const p = chooseProtocol ? chooseProtocol(arr, req) : arr[0];
      return p ?? false;
    },
  });
  wss.on('connection', (ws, req) => {
    let resolveClosed;
    const conn = {
      ws,
      req,
      url: req.url,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      offered: req.offered ?? [],
      protocol: ws.protocol,
      messages: [],
      pings: [],
      pongs: [],
      closeInfo: null,
      closed: new Promise((r) => { resolveClosed = r; }),
    };
    ws.on('message', (data, isBinary) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
      conn.messages.push({ data: buf, isBinary });
      const text = isBinary ? '' : buf.toString('utf8');
      if (!isBinary && text.startsWith('close-me:')) {
        ws.close(Number(text.slice(9)), 'bye');
        return;
      }
      if (!isBinary && text.startsWith('ping-me:')) {
        ws.ping(Buffer.from(text.slice(8)));
        return;
      }
      ws.send(buf, { binary: isBinary });
    });
    ws.on('ping', (d) => { conn.pings.push(d); ws.pong(Buffer.concat([Buffer.from('backend:'), d])); });
    ws.on('pong', (d) => { conn.pongs.push(d); });
    ws.on('error', () => {});
    ws.on('close', (code, reason) => {
      conn.closeInfo = { code, reason: reason.toString() };
      resolveClosed(conn.closeInfo);
    });
    conns.push(conn);
    for (const w of waiters.splice(0)) w();
    onConnection?.(conn);
  });
  if (!srv.listening) {
    await new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, host, () => { srv.off('error', reject); resolve(); });
    });
  }
  return {
    server: srv,
    wss,
    port: srv.address().port,
    conns,
    async waitConnection(i = 0, ms = 5000) {
      const deadline = Date.now() + ms;
      while (conns.length <= i) {
        if (Date.now() > deadline) throw new Error(`backend did not get connection #${i} within ${ms} ms`);
        await new Promise((r) => { const t = setTimeout(r, 50); waiters.push(() => { clearTimeout(t); r(); }); });
      }
      return conns[i];
    },
    close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      srv.closeAllConnections?.();
      return new Promise((r) => srv.close(() => r()));
    },
  };
}

/** startWsBackend on an https server presenting `cert` (an entry from issue()/selfSigned()). */
export async function startWssBackend(cert, { host = '127.0.0.1', ...opts } = {}) {
  const tlsInfo = { servernames: [] };
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => { res.writeHead(426); res.end('websocket only\n'); });
  server.on('secureConnection', (s) => { tlsInfo.servernames.push(s.servername ?? null); });
  server.on('tlsClientError', () => {});
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => { server.off('error', reject); resolve(); });
  });
  const b = await startWsBackend({ ...opts, server });
  b.tls = tlsInfo;
  return b;
}
