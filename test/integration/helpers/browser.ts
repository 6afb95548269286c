/**
 * Debian's Chromium driven by playwright-core (no browser download), as the browser tests launch
 * it: a fresh profile directory per launch, removed on close. Tests skip, with the reason, on a
 * machine without it (`.ci/run` installs it).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Headless, no sandbox (root in a container), nothing that talks to Google, and no QUIC. */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** A launched Chromium: its browser context, and `close()` that also removes the profile. */
export interface Chromium {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** How to launch: the viewport, command-line switches added to ours (`--proxy-server=…`), and whether certificate errors are ignored. */
export interface LaunchOptions {
  readonly viewport?: { width: number; height: number };
  readonly args?: readonly string[];
  readonly ignoreHTTPSErrors?: boolean;
}

/** Launches Chromium with a fresh profile; undefined when it is not installed. */
export async function launchChromium(options: LaunchOptions = {}): Promise<Chromium | undefined> {
  if (!existsSync(CHROMIUM)) return undefined;
  const profile = await mkdtemp(join(tmpdir(), 'switchboard-chromium-'));
  const { args = [], ...rest } = options;
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: [...ARGS, ...args], timeout: 30_000, ...rest });
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
  return {
    context,
    close: async () => {
      try {
        await context.close();
      } finally {
        await rm(profile, { recursive: true, force: true });
      }
    },
  };
}

/** Skips `t` with the reason when there is no Chromium (`browser` undefined); true when skipped. */
export function skipWithoutChromium(t: TestContext, browser: Chromium | undefined): browser is undefined {
  if (browser !== undefined) return false;
  t.skip(`${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)`);
  return true;
}
