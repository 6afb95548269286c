/**
 * The dashboard's static files (docs/admin.md, "Dashboard"): `index.html`, `app.js` (the page's
 * code with uPlot, bundled by esbuild) and `app.css`.
 *
 * Where they come from:
 * - an installed package runs dist/: `npm run build` (run by `npm pack` through `prepack`, and by
 *   the Dockerfile) writes them to dist/dashboard/ with scripts/build-dashboard.ts;
 * - a checkout runs src/ and has no build: the first request bundles src/admin/dashboard/ in
 *   memory with esbuild (a devDependency, so present in a checkout; imported only then);
 * - neither (an installed package built without the step): /dashboard answers 503 saying so.
 *
 * State (per process serving the admin): the files once loaded, kept for the process's life (they
 * hold no data: the page fetches everything with the operator's token).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export interface DashboardFile {
  type: string;
  body: Buffer;
}

export type DashboardAssets = Map<string, DashboardFile>;

/** The page's sources (in a checkout): next to this module. */
export const SOURCE_DIR = fileURLToPath(new URL('./dashboard/', import.meta.url));
/** The built files: dist/dashboard/ beside dist/admin/ (in a checkout this names src/dashboard/, which does not exist). */
const BUILT_DIR = fileURLToPath(new URL('../dashboard/', import.meta.url));

const TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/**
 * Bundles the page with esbuild: `app.js`, `app.css`, and `index.html` copied. Used by
 * scripts/build-dashboard.ts and by a checkout at its first request.
 */
export async function bundleDashboard(): Promise<DashboardAssets> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: { app: `${SOURCE_DIR}app.ts` },
    bundle: true,
    minify: true,
    format: 'iife',
    target: ['chrome110', 'firefox110', 'safari16'],
    outdir: '/dashboard',
    write: false,
    logLevel: 'silent',
    legalComments: 'eof',
  });
  const out: DashboardAssets = new Map();
  for (const f of result.outputFiles) {
    const name = f.path.slice(f.path.lastIndexOf('/') + 1);
    out.set(name, { type: TYPES[name] ?? 'application/octet-stream', body: Buffer.from(f.contents) });
  }
  out.set('index.html', { type: TYPES['index.html']!, body: await readFile(`${SOURCE_DIR}index.html`) });
  for (const name of Object.keys(TYPES)) if (!out.has(name)) throw new Error(`the dashboard bundle has no ${name}`);
  return out;
}

let loading: Promise<DashboardAssets> | undefined;

/** The files, from dist/dashboard/ or bundled from the sources; rejects with why neither is there. */
export function dashboardAssets(): Promise<DashboardAssets> {
  loading ??= load();
  return loading;
}

async function load(): Promise<DashboardAssets> {
  if (existsSync(`${BUILT_DIR}index.html`)) {
    const out: DashboardAssets = new Map();
    for (const [name, type] of Object.entries(TYPES)) out.set(name, { type, body: await readFile(`${BUILT_DIR}${name}`) });
    return out;
  }
  if (!existsSync(`${SOURCE_DIR}app.ts`)) {
    throw new Error(`the dashboard is not built: ${BUILT_DIR} is missing (npm run build writes it)`);
  }
  try {
    return await bundleDashboard();
  } catch (err) {
    // Allow a later request to try again (a missing esbuild stays missing, a syntax error may be fixed).
    loading = undefined;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND') throw new Error('the dashboard is not built, and esbuild (a devDependency) is not installed to bundle it: run npm run build');
    throw new Error(`the dashboard could not be bundled: ${(err as Error).message}`);
  }
}
