// A/B of two Switchboard trees (run by hand, not a suite): the same bench/switchboard-child.ts from
// two checkouts (say, `git worktree add /tmp/old <commit>` with a symlink to this node_modules)
// over one bench/origin.ts, access log on, in rotated rounds of wrk (-t1 -c64), with each
// process's CPU per request from /proc. Used to measure a change to the hot path (bench/README.md,
// the own HTTP/1.1 server), where two whole `peers` runs apart read the machine more than the change.
//   node bench/experiments/ab-trees.ts <old tree> <new tree> [rounds=6] [seconds=5]
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';

const [oldTree, newTree] = [process.argv[2], process.argv[3]];
if (!oldTree || !newTree) {
  process.stderr.write('usage: node bench/experiments/ab-trees.ts <old tree> <new tree> [rounds] [seconds]\n');
  process.exit(2);
}
const ROUNDS = Number(process.argv[4] ?? 6);
const SECONDS = Number(process.argv[5] ?? 5);
const TICK_US = 1e6 / 100; // CLK_TCK

interface Child {
  proc: ChildProcess;
  port: number;
}

function start(cwd: string, args: string[]): Promise<Child> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /"port":(\d+)/.exec(out);
      if (m) resolve({ proc, port: Number(m[1]) });
    });
    proc.on('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}`)));
  });
}

/** utime + stime of `pid`, in microseconds. */
function cpuUs(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_US;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const origin = await start(newTree, ['bench/origin.ts']);
const trees = { old: oldTree, new: newTree };
const subjects: Record<string, Child> = {};
const results: Record<string, { rps: number; us: number }[]> = { old: [], new: [] };
try {
  for (const [name, dir] of Object.entries(trees)) {
    const spec = { origins: [`http://127.0.0.1:${origin.port}`], accessLog: `/tmp/ab-trees-${process.pid}-${name}.log` };
    subjects[name] = await start(dir, ['bench/switchboard-child.ts', JSON.stringify(spec)]);
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const name of r % 2 === 0 ? ['old', 'new'] : ['new', 'old']) {
      const s = subjects[name];
      const url = `http://127.0.0.1:${s.port}/`;
      execFileSync('wrk', ['-t1', '-c64', '-d1s', url]); // warm-up
      const before = cpuUs(s.proc.pid!);
      const out = execFileSync('wrk', ['-t1', '-c64', `-d${SECONDS}s`, url]).toString();
      const used = cpuUs(s.proc.pid!) - before;
      const requests = Number(/(\d+) requests in/.exec(out)![1]);
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]);
      results[name].push({ rps, us: used / requests });
      console.log(`round ${r + 1} ${name.padEnd(3)} ${rps.toFixed(0).padStart(7)} req/s ${(used / requests).toFixed(1).padStart(6)} us/req`);
    }
  }
  for (const name of ['old', 'new']) {
    const rs = results[name];
    console.log(
      `${name}: median ${median(rs.map((x) => x.rps)).toFixed(0)} req/s, ${median(rs.map((x) => x.us)).toFixed(1)} us/req (min ${Math.min(...rs.map((x) => x.us)).toFixed(1)})`,
    );
  }
} finally {
  for (const c of [origin, ...Object.values(subjects)]) c.proc.kill();
  for (const name of Object.keys(trees)) fs.rmSync(`/tmp/ab-trees-${process.pid}-${name}.log`, { force: true });
}
