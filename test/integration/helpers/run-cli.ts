/**
 * Runs the `switchboard` command to completion as a user does, in its own process group (so that
 * a `start` that forked workers ends with them); killed, group and all, if it outlives `ms`.
 */
import { spawn } from 'node:child_process';
import { guard } from './guard.ts';
import { MAIN, NODE, ROOT } from './paths.ts';

export interface CliRun {
  /** The exit code, or the signal's name. */
  code: number | string;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; ms?: number } = {}): Promise<CliRun> {
  const child = spawn(NODE, [MAIN, ...args], { cwd: ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  try {
    // 'close' rather than 'exit': every byte of both pipes has been read.
    const code = await guard(
      new Promise<number | string>((resolve) => child.once('close', (c, signal) => resolve(c ?? signal ?? -1))),
      `switchboard ${args.join(' ')}`,
      opts.ms ?? 15_000,
    );
    return { code, stdout, stderr };
  } finally {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // the group is gone already
    }
  }
}
