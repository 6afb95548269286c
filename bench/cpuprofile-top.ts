// Summarises a V8 .cpuprofile (from `node --cpu-prof`, e.g. BENCH_CPU_PROF=dir npm run bench).
// Usage: node bench/cpuprofile-top.ts <file.cpuprofile> [--top=N] [--match=REGEX]
//   prints the main thread's busy time and the top N functions by self time; with --match, also the
//   self and inclusive time of the functions whose "name url:line" matches REGEX (inclusive counts
//   a matching frame's callees too, and a sample with several matching frames once).
// Percentages are of the busy samples of the main JS thread: "(idle)" is left out, "(garbage
// collector)" and "(program)" are kept (they are work the process does).
import fs from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--'));
if (!file) {
  process.stderr.write('usage: node bench/cpuprofile-top.ts <file.cpuprofile> [--top=N] [--match=REGEX]\n');
  process.exit(2);
}
const top = Number(args.find((a) => a.startsWith('--top='))?.slice(6) ?? 25);
const matchArg = args.find((a) => a.startsWith('--match='))?.slice(8);
const match = matchArg ? new RegExp(matchArg) : null;

const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
const byId = new Map<number, ProfileNode>();
const parent = new Map<number, number>();
for (const n of profile.nodes) byId.set(n.id, n);
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Time per sample: the delta to the next sample (microseconds).
const selfUs = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i + 1] ?? 0;
  selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
}

const label = (n: ProfileNode): string => {
  const cf = n.callFrame;
  const where = cf.url ? `${path.relative(process.cwd(), cf.url.replace(/^file:\/\//, ''))}:${cf.lineNumber + 1}` : '';
  return `${cf.functionName || '(anonymous)'} ${where}`.trim();
};
const isIdle = (n: ProfileNode): boolean => n.callFrame.functionName === '(idle)';

let totalUs = 0;
let busyUs = 0;
const selfByLabel = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  totalUs += us;
  if (isIdle(n)) continue;
  busyUs += us;
  const l = label(n);
  selfByLabel.set(l, (selfByLabel.get(l) ?? 0) + us);
}

const pct = (us: number): string => `${((us / busyUs) * 100).toFixed(2).padStart(6)}%`;
console.log(`${path.basename(file)}: ${(totalUs / 1e6).toFixed(1)} s profiled, ${(busyUs / 1e6).toFixed(1)} s busy (main thread)`);
console.log(`\ntop ${top} by self time (% of busy):`);
for (const [l, us] of [...selfByLabel].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${l}`);
}

if (match) {
  const matches = (n: ProfileNode): boolean => match.test(label(n));
  // Inclusive: a sample counts once if any frame on its stack matches.
  const underMatch = new Map<number, boolean>();
  const isUnder = (id: number): boolean => {
    const cached = underMatch.get(id);
    if (cached !== undefined) return cached;
    const n = byId.get(id)!;
    const p = parent.get(id);
    const v = matches(n) || (p !== undefined && isUnder(p));
    underMatch.set(id, v);
    return v;
  };
  let selfMatch = 0;
  let inclMatch = 0;
  const perFn = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    if (isIdle(n)) continue;
    if (matches(n)) {
      selfMatch += us;
      perFn.set(label(n), (perFn.get(label(n)) ?? 0) + us);
    }
    if (isUnder(id)) inclMatch += us;
  }
  console.log(`\nfunctions matching /${match.source}/:`);
  for (const [l, us] of [...perFn].sort((a, b) => b[1] - a[1])) console.log(`  ${pct(us)}  ${(us / 1000).toFixed(1).padStart(8)} ms  ${l}`);
  console.log(`  self total ${pct(selfMatch).trim()}, inclusive (with callees) ${pct(inclMatch).trim()} of busy time`);
}
