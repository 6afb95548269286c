/**
 * A throwaway PKI for TLS tests, made at test time with the `openssl` CLI: a CA, certificates for
 * any set of names (server or client use), and expired or not-yet-valid ones. ECDSA P-256 keys,
 * so that making them takes milliseconds.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface IssuedCert {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

export interface IssueOptions {
  /** DNS names (and IP addresses) for the subjectAltName; the first is also the CN. */
  names: string[];
  /** `server` (default) or `client` (extendedKeyUsage clientAuth). */
  use?: 'server' | 'client';
  /** Validity as openssl dates `YYYYMMDDHHMMSSZ`; default: from yesterday for two days. */
  notBefore?: string;
  notAfter?: string;
  /** File name stem; default derived from the first name. */
  stem?: string;
}

export interface TestPki {
  dir: string;
  ca: IssuedCert;
  issue(opts: IssueOptions): Promise<IssuedCert>;
  /** A second, unrelated CA (for certificates that must not verify). */
  otherCa(): Promise<TestPki>;
  cleanup(): Promise<void>;
}

function opensslDate(d: Date): string {
  return `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

const IP = /^[\d.]+$|:/;

async function makeCa(dir: string, stem: string): Promise<IssuedCert> {
  const certFile = join(dir, `${stem}.pem`);
  const keyFile = join(dir, `${stem}-key.pem`);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '3',
    '-subj',
    `/CN=Switchboard Test ${stem}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { certFile, keyFile, cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') };
}

async function pkiIn(dir: string, caStem: string): Promise<TestPki> {
  const ca = await makeCa(dir, caStem);
  const db = join(dir, `${caStem}-index.txt`);
  await writeFile(db, '');
  const config = join(dir, `${caStem}.cnf`);
  await writeFile(
    config,
    [
      '[ca]',
      'default_ca = test',
      '[test]',
      `database = ${db}`,
      `new_certs_dir = ${dir}`,
      `serial = ${join(dir, `${caStem}-serial`)}`,
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      'copy_extensions = none',
      '[any]',
      'organizationName = optional',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  await writeFile(join(dir, `${caStem}-serial`), '1000\n');
  let n = 0;
  // `openssl ca` keeps a serial file and an index: one issue at a time per CA.
  let queue: Promise<unknown> = Promise.resolve();
  const issueOne = async (opts: IssueOptions): Promise<IssuedCert> => {
    const stem = opts.stem ?? `${caStem}-${opts.names[0].replace(/[^a-z0-9.-]/gi, '_')}-${n++}`;
    const keyFile = join(dir, `${stem}-key.pem`);
    const certFile = join(dir, `${stem}.pem`);
    const csr = join(dir, `${stem}.csr`);
    const ext = join(dir, `${stem}.ext`);
    await run('openssl', [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      csr,
      '-subj',
      `/O=Switchboard Tests/CN=${opts.names[0]}`,
    ]);
    const san = opts.names.map((x) => (IP.test(x) ? `IP:${x}` : `DNS:${x}`)).join(',');
    await writeFile(ext, `basicConstraints=CA:FALSE\nsubjectAltName=${san}\nextendedKeyUsage=${opts.use === 'client' ? 'clientAuth' : 'serverAuth'}\n`);
    const now = Date.now();
    await run('openssl', [
      'ca',
      '-batch',
      '-config',
      config,
      '-cert',
      ca.certFile,
      '-keyfile',
      ca.keyFile,
      '-in',
      csr,
      '-out',
      certFile,
      '-notext',
      '-startdate',
      opts.notBefore ?? opensslDate(new Date(now - 86_400_000)),
      '-enddate',
      opts.notAfter ?? opensslDate(new Date(now + 2 * 86_400_000)),
      '-extfile',
      ext,
    ]);
    return { certFile, keyFile, cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') };
  };
  const pki: TestPki = {
    dir,
    ca,
    issue(opts) {
      const next = queue.then(() => issueOne(opts));
      queue = next.catch(() => undefined);
      return next;
    },
    otherCa: () => pkiIn(dir, `${caStem}-other${n++}`),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
  return pki;
}

/** Makes a CA in a fresh temporary directory. Call `cleanup()` when done. */
export async function createPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-pki-'));
  return pkiIn(dir, 'ca');
}

/** openssl's date format, for `notBefore` / `notAfter`. */
export { opensslDate };
