// TLS helpers for the benchmark's `https` suite (bench/suites/https.ts):
//   makeBenchCerts  a throwaway CA and a server certificate for localhost / 127.0.0.1, made with
//                   the openssl CLI (ECDSA P-256 keys: the cheapest handshakes)
//   tlsHandshake    what a server negotiates (TLS version, cipher, ALPN) for a given ALPN offer
//   h2Get           one GET over HTTP/2 (TLS, ALPN h2), to check a server really speaks h2
// Self-contained: no import of the bench modules (bench/run.ts runs the benchmark when imported).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface BenchCerts {
  dir: string;
  /** The CA certificate (PEM text), for clients that verify. */
  ca: string;
  caFile: string;
  /** Server certificate (PEM file; the leaf only) and its key, valid for DNS:localhost and IP:127.0.0.1. */
  cert: string;
  key: string;
}

async function openssl(bin: string, args: string[], cwd: string): Promise<void> {
  try {
    await execFileP(bin, args, { cwd, timeout: 15_000, encoding: 'utf8' });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/**
 * Writes ca.pem, ca-key.pem, server.pem and server-key.pem into `dir` (created), all ECDSA P-256,
 * valid for two days. The caller removes `dir`.
 */
export async function makeBenchCerts(opensslBin: string, dir: string): Promise<BenchCerts> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = (name: string): string => path.join(dir, name);
  const newKey = (file: string): Promise<void> => openssl(opensslBin, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], dir);

  await newKey(f('ca-key.pem'));
  await openssl(
    opensslBin,
    [
      'req',
      '-x509',
      '-new',
      '-key',
      f('ca-key.pem'),
      '-sha256',
      '-days',
      '2',
      '-subj',
      '/CN=Switchboard bench CA (throwaway)',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      f('ca.pem'),
    ],
    dir,
  );
  await newKey(f('server-key.pem'));
  await openssl(opensslBin, ['req', '-new', '-key', f('server-key.pem'), '-subj', '/CN=localhost', '-out', f('server.csr')], dir);
  fs.writeFileSync(
    f('server.ext'),
    'basicConstraints=critical,CA:FALSE\n' + 'keyUsage=critical,digitalSignature\n' + 'extendedKeyUsage=serverAuth\n' + 'subjectAltName=DNS:localhost,IP:127.0.0.1\n',
  );
  const serial = `0x${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
  await openssl(
    opensslBin,
    [
      'x509',
      '-req',
      '-in',
      f('server.csr'),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca-key.pem'),
      '-set_serial',
      serial,
      '-days',
      '2',
      '-sha256',
      '-extfile',
      f('server.ext'),
      '-out',
      f('server.pem'),
    ],
    dir,
  );
  return { dir, ca: fs.readFileSync(f('ca.pem'), 'utf8'), caFile: f('ca.pem'), cert: f('server.pem'), key: f('server-key.pem') };
}

export interface Handshake {
  /** The negotiated application protocol, or false when the server picked none. */
  alpn: string | false;
  version: string;
  cipher: string;
}

/** Connects, completes a verified TLS handshake offering `alpn`, reports what was negotiated, closes. */
export function tlsHandshake(host: string, port: number, ca: string, alpn: string[], timeoutMs = 3000): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, ca, servername: 'localhost', ALPNProtocols: alpn });
    const timer = setTimeout(() => socket.destroy(new Error(`TLS handshake timed out after ${timeoutMs} ms`)), timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const r = { alpn: socket.alpnProtocol ?? false, version: socket.getProtocol() ?? '?', cipher: socket.getCipher()?.standardName ?? '?' };
      socket.end();
      resolve(r);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** GET `url` over HTTP/2 with TLS (the session must negotiate h2 by ALPN). */
export function h2Get(url: string, ca: string, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const session = http2.connect(u.origin, { ca, servername: 'localhost', ALPNProtocols: ['h2'] });
    const timer = setTimeout(() => session.destroy(new Error(`no HTTP/2 response within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      session.destroy();
      reject(err);
    };
    session.once('error', fail);
    const req = session.request({ ':method': 'GET', ':path': u.pathname + u.search });
    let status = 0;
    const chunks: Buffer[] = [];
    req.once('response', (h) => (status = Number(h[':status'])));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('error', fail);
    req.once('end', () => {
      clearTimeout(timer);
      session.close();
      resolve({ status, body: Buffer.concat(chunks).toString('utf8') });
    });
    req.end();
  });
}
