// The external programs the bench uses when installed (each suite skips what is missing, with a
// line saying so): nginx, haproxy, h2load, openssl; wrk is looked up by pickLoadgen (loadgen.ts).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Finds an executable on PATH, also looking in the sbin directories (nginx/haproxy live there). */
export function findExecutable(name: string): string | null {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const extra of ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin']) {
    if (!dirs.includes(extra)) dirs.push(extra);
  }
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      /* not here */
    }
  }
  return null;
}

/** The first line a program prints for `args` (e.g. --version). */
export function versionOf(bin: string, args: string[]): string {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 5000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? '';
}

export const nginxBin = findExecutable('nginx');
export const haproxyBin = findExecutable('haproxy');
export const h2loadBin = findExecutable('h2load');
export const opensslBin = findExecutable('openssl');

/** The versions of the programs above, for the results file. */
export function toolVersions(): Record<string, string> {
  return {
    nginx: nginxBin ? versionOf(nginxBin, ['-v']) : 'not installed',
    haproxy: haproxyBin ? versionOf(haproxyBin, ['-v']) : 'not installed',
    h2load: h2loadBin ? versionOf(h2loadBin, ['--version']) : 'not installed',
    openssl: opensslBin ? versionOf(opensslBin, ['version']) : 'not installed',
  };
}
