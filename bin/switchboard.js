#!/usr/bin/env node
// The `switchboard` command. In a checkout (src/ beside bin/) it runs the TypeScript sources
// directly (Node strips the types), so `npx switchboard` never runs a stale build; an installed
// package (npm install -g, npx, the container image) has no src/ and runs the compiled dist/,
// which `npm pack` builds (the `prepack` script).
import { existsSync } from 'node:fs';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 22)) {
  process.stderr.write(
    `switchboard needs Node.js 22.22 or newer (24 LTS recommended); this is ${process.version}.\n` +
      'Install Node.js 24 (https://nodejs.org/en/download or your package manager; see the README),\n' +
      'or, inside a checkout of the project, run it through npm (npm start, npx switchboard), which uses the\n' +
      "project's own Node 24.\n",
  );
  process.exit(1);
}
const source = new URL('../src/cli/main.ts', import.meta.url);
await import(existsSync(source) ? source.href : '../dist/cli/main.js');
