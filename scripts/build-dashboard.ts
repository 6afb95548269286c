/**
 * Writes the dashboard's static files (src/admin/dashboard/ bundled with uPlot by esbuild) to
 * dist/dashboard/, where an installed package's admin listener serves them from
 * (src/admin/dashboard-assets.ts). Run by `npm run build` (and so by `npm pack`) and the Dockerfile.
 *
 *   node scripts/build-dashboard.ts [out-dir]      default: dist/dashboard
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { bundleDashboard } from '../src/admin/dashboard-assets.ts';

const out = resolve(process.argv[2] ?? join(import.meta.dirname, '..', 'dist', 'dashboard'));
const files = await bundleDashboard();
await mkdir(out, { recursive: true });
for (const [name, f] of files) await writeFile(join(out, name), f.body);
process.stdout.write(`dashboard: ${[...files].map(([name, f]) => `${name} ${(f.body.length / 1024).toFixed(1)} KiB`).join(', ')} → ${out}\n`);
