/** Both reports: the text one is deterministic and complete; the HTML one is self-contained and escaped. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeHtml, reportHtml } from './report-html.ts';
import { reportText, wrap } from './report-text.ts';
import { runScenario } from './run-scenario.ts';
import { SCENARIOS, builtinScenario } from './scenarios.ts';

const SMALL = { requests: 3000 };

test('text: the same seed prints byte-identical reports; another seed does not', () => {
  const text = (seed: number): string => reportText(SCENARIOS.map((s) => runScenario(s, { ...SMALL, seed })));
  const a = text(1);
  assert.equal(text(1), a);
  assert.notEqual(text(2), a);
});

test('text: per algorithm a table per endpoint, a summary, keys moved for failures, what it shows', () => {
  const text = reportText([runScenario(builtinScenario('failure')!, { requests: 10_000, seed: 1, algorithms: ['round-robin', 'consistent-hash'] })]);
  assert.match(text, /^=== failure ===$/m);
  assert.match(text, /^round-robin\n {2}endpoint +weight +share +mean ms +p99 ms +errors$/m);
  for (const name of ['s1', 's2', 's3', 's4', 's5']) assert.match(text, new RegExp(`^ {2}${name} +1 +\\d+\\.\\d% +\\d+\\.\\d +\\d+\\.\\d +\\d+$`, 'm'));
  assert.match(text, /^ {2}keys moved: \d+\.\d% \(\d+ of \d+ keys/m);
  assert.match(text, /^Summary: failure\n {2}algorithm +mean ms +p99 ms +errors +keys moved$/m);
  assert.match(text, /^What this shows:\n {2}Until health checking/m);
  assert.ok(
    text.split('\n').every((l) => l.length <= 100),
    'no line over 100 columns',
  );
});

test('text: a failure shorter than its detection delay has no keys moved, and says why', () => {
  // 1000 requests at 700 req/s: s3 is down from 0.6 s to 1.1 s, less than the 2 s detection delay.
  const text = reportText([runScenario(builtinScenario('failure')!, { requests: 1000, seed: 1, algorithms: ['round-robin'] })]);
  assert.match(text, /^ {2}keys moved: - \(the failed endpoint recovered before health checks took it out\)$/m);
  assert.match(text, /^ {2}round-robin +\d+\.\d +\d+\.\d +\d+ +-$/m);
});

test('wrap breaks at 100 columns on word boundaries', () => {
  const lines = wrap('word '.repeat(60), '  ');
  assert.ok(lines.length > 1 && lines.every((l) => l.length <= 100 && l.startsWith('  word')));
});

test('html: self-contained, with SVG charts for every algorithm and the timeline', () => {
  const result = runScenario(builtinScenario('slowdown')!, { ...SMALL, seed: 1, algorithms: ['round-robin', 'least-response-time'] });
  const html = reportHtml([result]);
  assert.match(html, /^<!DOCTYPE html>/);
  assert.ok((html.match(/<svg /g) ?? []).length >= 5, 'a timeline and two charts per algorithm');
  assert.match(html, /p99 latency over time/);
  assert.match(html, /<polyline /);
  assert.doesNotMatch(html, /<script|<link|@import|url\(|src=/i, 'nothing external, no scripts');
});

test('html: scenario text is escaped', () => {
  const evil = { ...builtinScenario('equal')!, name: '<script>alert(1)</script>', description: 'a & b "quoted" <b>' };
  const html = reportHtml([runScenario(evil, { requests: 500, seed: 1, algorithms: ['random'] })]);
  assert.doesNotMatch(html, /<script>/);
  assert.match(html, /&#60;script&#62;alert\(1\)&#60;\/script&#62;/);
  assert.match(html, /a &#38; b &#34;quoted&#34; &#60;b&#62;/);
  assert.equal(escapeHtml(`<>&"'`), '&#60;&#62;&#38;&#34;&#39;');
});

test('html: on top, the best p99 for each fleet and a table of contents linking every section', () => {
  const results = ['equal', 'failure'].map((n) => runScenario(builtinScenario(n)!, { ...SMALL, seed: 1, algorithms: ['round-robin', 'least-connections'] }));
  const html = reportHtml(results);
  const overview = html.indexOf('<caption>Best p99 for each fleet</caption>');
  assert.ok(overview > 0 && overview < html.indexOf('<section'), 'the overview comes before the sections');
  for (const [i, r] of results.entries()) {
    const best = [...r.runs].sort((a, b) => a.overall.p99 - b.overall.p99)[0]!;
    assert.match(html, new RegExp(`<td><a href="#scenario-${i + 1}">${r.scenario.name}</a></td><td>${best.algorithm}</td><td>`));
    assert.match(html, new RegExp(`<section id="scenario-${i + 1}">`));
    for (const part of ['latency', 'errors', 'endpoints']) {
      assert.match(html, new RegExp(`<a href="#scenario-${i + 1}-${part}">`));
      assert.match(html, new RegExp(`id="scenario-${i + 1}-${part}"`));
    }
  }
  assert.match(html, /<nav class="toc">/);
});

test('html: slowdowns and failures are marked on the timelines; errors over time are drawn', () => {
  const failure = reportHtml([runScenario(builtinScenario('failure')!, { ...SMALL, seed: 1, algorithms: ['round-robin'] })]);
  // Both timelines (latency and errors) carry the failure and its recovery.
  assert.equal((failure.match(/<g class="marker fail">.*?s3 fails<\/text><\/g>/g) ?? []).length, 2);
  assert.equal((failure.match(/<g class="marker back">.*?s3 recovers<\/text><\/g>/g) ?? []).length, 2);
  assert.match(failure, /<svg [^>]*class="errors"><title>errors over time<\/title>/);
  // The failure resets requests: the errors line is not flat at zero.
  const run = runScenario(builtinScenario('failure')!, { ...SMALL, seed: 1, algorithms: ['round-robin'] }).runs[0]!;
  assert.ok(run.timeline.errors.some((e) => e > 0));
  assert.equal(
    run.timeline.errors.reduce((a, b) => a + b, 0),
    run.overall.errors,
    'every error is in one bucket',
  );
  const slowdown = reportHtml([runScenario(builtinScenario('slowdown')!, { ...SMALL, seed: 1, algorithms: ['round-robin'] })]);
  assert.match(slowdown, /<g class="marker slow">.*?slower<\/text><\/g>/);
  const equal = reportHtml([runScenario(builtinScenario('equal')!, { ...SMALL, seed: 1, algorithms: ['round-robin'] })]);
  assert.doesNotMatch(equal, /class="marker/, 'no events, no markers');
});
