/**
 * Reading and checking the PEM files a config names: certificates with their keys (expired,
 * not yet valid, key not matching, no names) and CA bundles. Used at config load, where a problem
 * is a config error, and by the certificate watcher, where it keeps the old certificate serving.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { KeyPath, Problem } from './problems.ts';

/** A path from the config, relative to the config file's directory. */
export function configPath(baseDir: string, file: string): string {
  return isAbsolute(file) ? file : resolve(baseDir, file);
}

/** What is wrong with one file: `expected` and `found` in the config error's terms. */
export interface FileProblem {
  /** Which of the entry's keys it concerns. */
  key: 'cert' | 'key' | 'ca';
  expected: string;
  found: string;
}

/** Reports a file problem as a config problem, at the key of the config entry `at` that names the file. */
export function fileProblem(at: KeyPath, p: FileProblem, problems: Problem[]): void {
  problems.push({ path: [...at, p.key], expected: p.expected, found: p.found });
}

export type Checked<T> = { ok: true; value: T } | { ok: false; problem: FileProblem };

function read(file: string, key: FileProblem['key']): Checked<string> {
  try {
    return { ok: true, value: readFileSync(file, 'utf8') };
  } catch (err) {
    return {
      ok: false,
      problem: { key, expected: 'a readable PEM file', found: `${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` },
    };
  }
}

/** DNS names of a certificate, lower-cased: the SAN's DNS and IP entries, or the CN when it has no SAN. */
export function certificateNames(x509: X509Certificate): string[] {
  const san = x509.subjectAltName;
  if (san) {
    const names: string[] = [];
    for (const part of san.split(', ')) {
      if (part.startsWith('DNS:')) names.push(part.slice(4).toLowerCase());
      else if (part.startsWith('IP Address:')) names.push(part.slice(11).toLowerCase());
    }
    if (names.length) return names;
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject);
  return cn ? [cn[1].toLowerCase()] : [];
}

export interface LoadedCertificate {
  cert: string;
  key: string;
  names: string[];
}

/** Reads a certificate chain and its key and checks they belong together and are valid now. */
export function loadCertificate(certFile: string, keyFile: string, now = Date.now()): Checked<LoadedCertificate> {
  const cert = read(certFile, 'cert');
  if (!cert.ok) return cert;
  const key = read(keyFile, 'key');
  if (!key.ok) return key;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert.value);
  } catch (err) {
    return { ok: false, problem: { key: 'cert', expected: 'a PEM certificate', found: `${JSON.stringify(certFile)} (${(err as Error).message})` } };
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key.value);
  } catch (err) {
    return { ok: false, problem: { key: 'key', expected: 'a PEM private key (unencrypted)', found: `${JSON.stringify(keyFile)} (${(err as Error).message})` } };
  }
  if (!x509.checkPrivateKey(privateKey)) {
    return {
      ok: false,
      problem: { key: 'key', expected: `the private key of ${JSON.stringify(certFile)}`, found: `${JSON.stringify(keyFile)}, which belongs to another certificate` },
    };
  }
  if (Date.parse(x509.validTo) < now) {
    return { ok: false, problem: { key: 'cert', expected: 'a certificate that has not expired', found: `${JSON.stringify(certFile)}, expired ${x509.validTo}` } };
  }
  if (Date.parse(x509.validFrom) > now) {
    return { ok: false, problem: { key: 'cert', expected: 'a certificate that is valid now', found: `${JSON.stringify(certFile)}, valid only from ${x509.validFrom}` } };
  }
  const names = certificateNames(x509);
  if (!names.length) {
    return {
      ok: false,
      problem: { key: 'cert', expected: 'a certificate with DNS names (subjectAltName or CN)', found: `${JSON.stringify(certFile)}, which names no host` },
    };
  }
  return { ok: true, value: { cert: cert.value, key: key.value, names } };
}

/** Reads a CA bundle and checks it holds at least one certificate. */
export function loadCa(file: string): Checked<string> {
  const ca = read(file, 'ca');
  if (!ca.ok) return ca;
  try {
    new X509Certificate(ca.value);
  } catch (err) {
    return { ok: false, problem: { key: 'ca', expected: 'a PEM CA bundle', found: `${JSON.stringify(file)} (${(err as Error).message})` } };
  }
  return ca;
}

/** Reads a PEM file without checks beyond readability (client keys, parsed by TLS later). */
export function loadPem(file: string, key: FileProblem['key']): Checked<string> {
  return read(file, key);
}
