// Summarises a V8 heap snapshot (the memory suite's BENCH_MEMORY_SNAPSHOTS, v8.writeHeapSnapshot,
// --heapsnapshot-signal): objects grouped by type and constructor (or closure name), by self size.
// With a second snapshot, the difference (second - first), optionally per connection:
//   node bench/heapsnapshot-top.ts <b.heapsnapshot> [--base=<a.heapsnapshot>] [--per=10000] [--top=30]
// Self sizes only (not retained sizes): what each kind of object itself takes on the V8 heap.
import fs from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

interface Group {
  count: number;
  size: number;
}

function groups(file: string): Map<string, Group> {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const out = new Map<string, Group>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]];
    let name = snap.strings[snap.nodes[i + iName]];
    // Strings and numbers are grouped by type only; their contents would make every one a group.
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number') name = '';
    if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type} ${name}`;
    const g = out.get(key) ?? { count: 0, size: 0 };
    g.count++;
    g.size += snap.nodes[i + iSize];
    out.set(key, g);
  }
  return out;
}

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const file = args.find((a) => !a.startsWith('--'));
if (!file) {
  process.stderr.write('usage: node bench/heapsnapshot-top.ts <snapshot> [--base=<snapshot>] [--per=N] [--top=30]\n');
  process.exit(2);
}
const top = Number(opt('top') ?? 30);
const per = Number(opt('per') ?? 1);
const base = opt('base');
const after = groups(file);
const before = base ? groups(base) : new Map<string, Group>();
const rows = [...new Set([...after.keys(), ...before.keys()])].map((key) => {
  const a = after.get(key) ?? { count: 0, size: 0 };
  const b = before.get(key) ?? { count: 0, size: 0 };
  return { key, count: a.count - b.count, size: a.size - b.size };
});
rows.sort((x, y) => y.size - x.size);
const total = rows.reduce((s, r) => s + r.size, 0);
const unit = per > 1 ? `bytes per ${per === 1 ? '' : `1/${per}`}` : 'bytes';
console.log(
  `${base ? `${file} - ${base}` : file}: ${(total / 2 ** 20).toFixed(1)} MiB self size${per > 1 ? `, ${(total / per).toFixed(0)} bytes per unit (/${per})` : ''}`,
);
console.log(`${'size'.padStart(12)} ${'count'.padStart(9)} ${per > 1 ? `${'B/unit'.padStart(8)} ${'n/unit'.padStart(7)} ` : ''} type and name (${unit})`);
for (const r of rows.slice(0, top)) {
  const perCols = per > 1 ? `${(r.size / per).toFixed(0).padStart(8)} ${(r.count / per).toFixed(2).padStart(7)} ` : '';
  console.log(`${r.size.toString().padStart(12)} ${r.count.toString().padStart(9)} ${perCols} ${r.key}`);
}
