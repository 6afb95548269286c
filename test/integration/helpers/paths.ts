/** Where the project's Node 24 and the CLI entry are, for tests that run the CLI as a child process. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const NODE = join(ROOT, 'node_modules/.bin/node');
export const MAIN = join(ROOT, 'src/cli/main.ts');
