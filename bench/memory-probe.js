// Preloaded into a process whose memory the `memory` suite measures (`node --import ./bench/memory-probe.js ...`).
// Plain JavaScript: a .ts file would load Node's type stripper (amaro) into every subject, about 20 MB.
// On SIGWINCH it writes where its memory goes, as one JSON object, to the file named by
// BENCH_MEMORY_PROBE_FILE (written to <file>.tmp, then renamed, so a reader never sees half of it):
//   { "asFound": Reading, "afterGc": Reading | null, "snapshot": path | null }
// Reading: process.memoryUsage() (rss, heapTotal, heapUsed, external, arrayBuffers), RssAnon and
// RssFile from /proc/self/status, and every V8 heap space's size and used bytes.
// `afterGc` is the same after a full garbage collection (what is alive, not garbage not yet
// collected). When <file>.req exists and names a path, a heap snapshot is written there first
// (v8.writeHeapSnapshot, itself preceded by a full GC), and the request file is removed.
// Costs the measured process nothing until the signal: one listener, no timer. Not SIGUSR2 (nor
// SIGHUP, SIGUSR1): `switchboard start` upgrades itself on SIGUSR2 (reloads, reopens logs on the
// others), and the probed CLI would hand its sockets to a new process and exit. SIGWINCH does nothing
// by default in a process without a terminal.
import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';

const FILE = process.env.BENCH_MEMORY_PROBE_FILE;

/** @param {string} field @param {string} status @returns {number | null} */
function statusKb(field, status) {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
  return m ? Number(m[1]) * 1024 : null;
}

/** The Reading of bench/suites/memory.ts. */
function reading() {
  const mu = process.memoryUsage();
  let status = '';
  try {
    status = fs.readFileSync('/proc/self/status', 'utf8');
  } catch {
    /* not Linux */
  }
  /** @type {Record<string, { size: number; used: number }>} */
  const spaces = {};
  for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name] = { size: s.space_size, used: s.space_used_size };
  return {
    rss: mu.rss,
    heapTotal: mu.heapTotal,
    heapUsed: mu.heapUsed,
    external: mu.external,
    arrayBuffers: mu.arrayBuffers,
    rssAnon: statusKb('RssAnon', status),
    rssFile: statusKb('RssFile', status),
    spaces,
  };
}

/** A full GC without starting the process with --expose-gc (which would change what is measured). */
function fullGc() {
  v8.setFlagsFromString('--expose-gc');
  vm.runInNewContext('gc')();
}

if (FILE) {
  process.on('SIGWINCH', () => {
    const asFound = reading();
    let snapshot = null;
    try {
      const req = fs.readFileSync(`${FILE}.req`, 'utf8').trim();
      fs.rmSync(`${FILE}.req`, { force: true });
      if (req) snapshot = v8.writeHeapSnapshot(req);
    } catch {
      /* no snapshot asked for */
    }
    let afterGc = null;
    try {
      fullGc();
      afterGc = reading();
    } catch {
      /* gc not reachable */
    }
    fs.writeFileSync(`${FILE}.tmp`, JSON.stringify({ asFound, afterGc, snapshot }));
    fs.renameSync(`${FILE}.tmp`, FILE);
  });
}
