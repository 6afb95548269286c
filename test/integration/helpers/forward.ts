/**
 * Forward-proxy test configs: a `proxy` listener (protocol forward) that allows the loopback origins
 * by a rule, as a user would; and curl as the tests run it.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A forward listener `proxy` on 127.0.0.1:0 allowing 127.0.0.0/8, with `forward` settings, listener keys and top-level sections merged in. */
export function forwardConfig(forward: object = {}, listener: object = {}, extra: object = {}): object {
  return {
    listeners: {
      proxy: {
        address: '127.0.0.1:0',
        protocol: 'forward',
        forward: { rules: [{ action: 'allow', destinations: ['127.0.0.0/8'] }], ...forward },
        ...listener,
      },
    },
    ...extra,
  };
}

/** What curl did: its exit code (0 = a response came), stdout and stderr. */
export interface CurlRun {
  readonly exit: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `curl -sS --max-time 10 …args` (a child that ends by itself); never throws for a curl failure. */
export async function curl(args: readonly string[]): Promise<CurlRun> {
  try {
    const { stdout, stderr } = await run('curl', ['-sS', '--max-time', '10', ...args]);
    return { exit: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { exit: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A 403/502 JSON error answer as curl `-i` printed it: the status and the body's code. */
export function errorAnswer(out: string): { status: number; code: string | undefined } {
  const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(out)?.[1] ?? 0);
  const body = out.slice(out.indexOf('\r\n\r\n') + 4);
  let code: string | undefined;
  try {
    code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status, code };
}
