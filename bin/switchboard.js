#!/usr/bin/env node
// Runs the compiled CLI (dist/, built by `npm run build`, which `npm ci` runs through `prepare`).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `switchboard needs Node.js >= 22.12 (24 LTS recommended); this is ${process.version}.\n` +
      'Inside the project, run it through npm (npm start, npx switchboard), which uses its own Node 24.\n',
  );
  process.exit(1);
}
await import('../dist/cli/main.js');
