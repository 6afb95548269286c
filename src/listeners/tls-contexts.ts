/**
 * The certificates of an https listener: one TLS context per certificate, chosen by SNI (exact
 * names first, then the `*.` wildcard one label up), and a default for clients whose SNI matches
 * none (the first certificate), unless `strictSni`. The files are watched: a changed certificate or
 * key is read, checked (pair, expiry) and swapped in for new handshakes; connections already open
 * keep theirs. The client-certificate CA file is watched the same way. A bad file on disk is
 * logged and the old certificate (or CA) keeps serving.
 */
import tls, { type SecureContext } from 'node:tls';
import { constants } from 'node:crypto';
import type { FSWatcher } from 'chokidar';
import { watchFile } from '../util/watch-file.ts';
import type { Logger } from 'pino';
import type { CertificateConfig, ListenerTlsConfig } from '../config/types.ts';
import { loadCa, loadCertificate } from '../config/tls-files.ts';
import { sniLookup } from './sni-lookup.ts';

/** Server options a TLS context carries (the rest are set on the server once). */
function contextOptions(t: ListenerTlsConfig, cert: string, key: string, ticketKeys: Buffer | undefined): tls.SecureContextOptions {
  const o: tls.SecureContextOptions = { cert, key, minVersion: t.minVersion, sessionTimeout: Math.max(1, Math.round(t.sessionTimeout / 1000)) };
  // Every context (the one SNI picks encrypts and decrypts the ticket) gets the machine's keys.
  if (ticketKeys !== undefined) o.ticketKeys = ticketKeys;
  if (t.ciphers !== undefined) o.ciphers = t.ciphers;
  if (t.clientCertificate !== undefined) o.ca = t.clientCertificate.ca;
  if (!t.sessionTickets) o.secureOptions = constants.SSL_OP_NO_TICKET;
  return o;
}

/** What a worker's TLS listeners take from the machine (its supervisor). */
export interface MachineTls {
  /** Session ticket keys (48 bytes) the workers share, so a session resumes on any of them. */
  ticketKeys: Buffer;
}

interface Entry {
  config: CertificateConfig;
  context: SecureContext;
}

export class CertificateStore {
  #tls: ListenerTlsConfig;
  #entries: Entry[] = [];
  /** Exact names (and `*.x` wildcards, stored as written) to their certificate. */
  #byName = new Map<string, Entry>();
  #watcher: FSWatcher | undefined;
  #watching: Promise<void> = Promise.resolve();
  readonly #log: Logger;
  readonly #listener: string;
  /** Called with the default certificate's options when it changes (the server's own context). */
  readonly #onDefault: (opts: tls.SecureContextOptions) => void;

  /** TLS session ticket keys shared by the machine's workers (48 bytes); undefined: each context its own. */
  readonly #ticketKeys: Buffer | undefined;
  /** False in a worker: the supervisor watches the files once for the machine and calls `reloadFiles`. */
  readonly #watchFiles: boolean;

  /**
   * `machine`: set in a worker, whose supervisor owns the ticket keys and watches the files (once
   * per machine, not once per worker).
   */
  constructor(listener: string, config: ListenerTlsConfig, log: Logger, onDefault: (opts: tls.SecureContextOptions) => void, machine?: MachineTls) {
    this.#ticketKeys = machine?.ticketKeys;
    this.#watchFiles = machine === undefined;
    this.#listener = listener;
    this.#log = log;
    this.#tls = config;
    this.#onDefault = onDefault;
    this.update(config);
  }

  /** Server options for the default certificate (undefined with strictSni: no SNI, no handshake). */
  defaultOptions(): tls.SecureContextOptions | undefined {
    if (this.#tls.strictSni) return undefined;
    const first = this.#entries[0].config;
    return contextOptions(this.#tls, first.cert, first.key, this.#ticketKeys);
  }

  /** Takes a new config's certificates (reload). Files were checked by the config loader. */
  update(config: ListenerTlsConfig): void {
    this.#tls = config;
    this.#entries = config.certificates.map((c) => ({ config: c, context: tls.createSecureContext(contextOptions(config, c.cert, c.key, this.#ticketKeys)) }));
    this.#index();
    const d = this.defaultOptions();
    if (d) this.#onDefault(d);
    this.#watching = this.#rewatch();
  }

  #index(): void {
    const byName = new Map<string, Entry>();
    // The first certificate naming a host wins, as the first listed is the preferred one.
    for (const e of this.#entries) for (const n of e.config.names) if (!byName.has(n)) byName.set(n, e);
    this.#byName = byName;
  }

  /** The context for an SNI name, or undefined when none matches (and strictSni). */
  contextFor(servername: string): SecureContext | undefined {
    const e = sniLookup(this.#byName, servername.toLowerCase(), undefined);
    if (e !== undefined) return e.context;
    return this.#tls.strictSni ? undefined : this.#entries[0]?.context;
  }

  /** node:tls SNICallback: an unknown name fails the handshake (unrecognized_name) under strictSni. */
  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    const ctx = this.contextFor(servername);
    if (ctx) cb(null, ctx);
    else cb(new Error(`no certificate for ${JSON.stringify(servername)} on listener ${this.#listener}`));
  };

  /** Reads the certificate and CA files again now (a worker, told by its supervisor that they changed). */
  reloadFiles(): void {
    this.#reloadFiles();
  }

  async #rewatch(): Promise<void> {
    if (!this.#watchFiles) return;
    const files = this.#tls.certificates.flatMap((c) => [c.certFile, c.keyFile]);
    const cc = this.#tls.clientCertificate;
    if (cc !== undefined) files.push(cc.caFile);
    await this.#watcher?.close();
    // A certificate and its key are usually replaced together: read them once both settled.
    this.#watcher = await watchFile(files, () => this.#reloadFiles());
  }

  /** Resolves once the file watcher is ready, so that no change is missed. */
  ready(): Promise<void> {
    return this.#watching;
  }

  #reloadFiles(): void {
    let changed = this.#reloadCa();
    const entries = this.#entries.map((e) => {
      const c = e.config;
      const loaded = loadCertificate(c.certFile, c.keyFile);
      if (!loaded.ok) {
        this.#log.error(
          { listener: this.#listener, cert: c.certFile, problem: `expected ${loaded.problem.expected}, found ${loaded.problem.found}` },
          'certificate files rejected; the old certificate keeps serving',
        );
        return e.config;
      }
      if (loaded.value.cert === c.cert && loaded.value.key === c.key) return c;
      changed = true;
      const config: CertificateConfig = { ...c, ...loaded.value };
      this.#log.info({ listener: this.#listener, cert: c.certFile, names: config.names }, 'certificate reloaded');
      return config;
    });
    if (!changed) return;
    // Every context is rebuilt: a new client CA belongs in each of them.
    this.update({ ...this.#tls, certificates: entries });
  }

  /** Reads the client-certificate CA again; true when it changed (a bad file keeps the old one). */
  #reloadCa(): boolean {
    const cc = this.#tls.clientCertificate;
    if (cc === undefined) return false;
    const ca = loadCa(cc.caFile);
    if (!ca.ok) {
      this.#log.error(
        { listener: this.#listener, ca: cc.caFile, problem: `expected ${ca.problem.expected}, found ${ca.problem.found}` },
        'client CA file rejected; the old one keeps verifying',
      );
      return false;
    }
    if (ca.value === cc.ca) return false;
    this.#tls = { ...this.#tls, clientCertificate: { ...cc, ca: ca.value } };
    this.#log.info({ listener: this.#listener, ca: cc.caFile }, 'client CA reloaded');
    return true;
  }

  async close(): Promise<void> {
    await this.#watching;
    await this.#watcher?.close();
    this.#watcher = undefined;
  }
}
