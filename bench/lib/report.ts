// Output: progress lines (stderr), and the headings, tables and numbers of the results (stdout).

/** A progress line, to stderr (the results go to stdout). */
export function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function fmt(n: number | null | undefined, digits: number): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "34/33/33": per-origin shares in percent. */
export function fmtShares(shares: number[] | undefined): string {
  return shares && shares.length > 0 ? shares.map((x) => (x * 100).toFixed(0)).join('/') : '-';
}

export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

export function heading(title: string): void {
  console.log(`\n${'='.repeat(8)} ${title} ${'='.repeat(Math.max(8, 72 - title.length))}\n`);
}
