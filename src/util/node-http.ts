/**
 * node:http, loaded as CommonJS. An ES `import` of a builtin reads every export to build the module
 * namespace, and node:http's exports include lazy getters (`WebSocket`, `CloseEvent`, `MessageEvent`)
 * that load Node's own bundled undici (about 760 KB of source, with web streams and worker_threads):
 * about 4 MB of RSS in every process that never uses them. `require` leaves them unread. Every
 * module of Switchboard takes node:http from here (types may still be imported from 'node:http');
 * `node-http.test.ts` checks that loading a worker's modules leaves Node's undici unloaded.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const http: typeof import('node:http') = require('node:http');
export default http;
export const { METHODS, STATUS_CODES, maxHeaderSize } = http;
