/**
 * A Squid of the test's own, as a real parent proxy: on a free port of 127.0.0.1, no cache, basic
 * authentication against a password file (`basic_ncsa_auth`), CONNECT allowed to any port for
 * authenticated users only. Started in a temporary directory, killed by PID in `stop`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guard } from './guard.ts';
import { closedPort } from './origin.ts';

export interface Squid {
  port: number;
  /** The access log's lines so far (`%rm %ru %un %>Hs`: method, URL, user, status). */
  accessLog(): string[];
  stop(): Promise<void>;
}

const HELPER = '/usr/lib/squid/basic_ncsa_auth';

/** Whether this machine has squid and its basic auth helper (tests skip otherwise). */
export function hasSquid(): boolean {
  try {
    execFileSync('squid', ['-v'], { stdio: 'ignore' });
    return existsSync(HELPER);
  } catch {
    return false;
  }
}

/** Starts squid requiring `user`:`password`; resolves once it accepts connections. */
export async function startSquid(user: string, password: string): Promise<Squid> {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-squid-'));
  chmodSync(dir, 0o777); // squid drops root for the `proxy` user, which writes its logs here
  const port = await closedPort();
  const hash = execFileSync('openssl', ['passwd', '-apr1', password], { encoding: 'utf8' }).trim();
  writeFileSync(join(dir, 'passwd'), `${user}:${hash}\n`);
  writeFileSync(
    join(dir, 'squid.conf'),
    `http_port 127.0.0.1:${port}
pid_filename ${dir}/squid.pid
cache deny all
logformat test %rm %ru %un %>Hs
access_log stdio:${dir}/access.log test
cache_log ${dir}/cache.log
coredump_dir ${dir}
pinger_enable off
auth_param basic program ${HELPER} ${dir}/passwd
auth_param basic children 1
acl authed proxy_auth REQUIRED
http_access allow authed
http_access deny all
shutdown_lifetime 0 seconds
`,
  );
  const child: ChildProcess = spawn('squid', ['-N', '-f', join(dir, 'squid.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = once(child, 'exit').then(() => {
    throw new Error(`squid exited before it was ready: ${output}`);
  });
  const log = (): string => (existsSync(join(dir, 'cache.log')) ? readFileSync(join(dir, 'cache.log'), 'utf8') : '');
  // Ready once cache.log says it accepts connections; squid writes it as it starts (polled, no fixed wait).
  const ready = (async () => {
    while (!log().includes('Accepting HTTP Socket connections')) await new Promise<void>((r) => setTimeout(r, 50));
  })();
  await guard(Promise.race([ready, exited]), `squid on port ${port}`, 15_000);
  exited.catch(() => {});
  return {
    port,
    accessLog: () => (existsSync(join(dir, 'access.log')) ? readFileSync(join(dir, 'access.log'), 'utf8').split('\n').filter(Boolean) : []),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = once(child, 'exit');
        process.kill(child.pid as number, 'SIGKILL');
        await guard(gone, 'squid exit', 5000);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
