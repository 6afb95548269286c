/**
 * The dashboard page (docs/admin.md, "Dashboard"), bundled by esbuild with uPlot into app.js.
 *
 * Every POLL_MS it reads `/metrics` and `/api/upstreams` and computes, in the browser, rates from
 * the counters' deltas, latency percentiles from the histogram buckets' deltas, and each
 * endpoint's share of the balancer's picks. The access log's live tail is read from
 * `/api/access-log/stream` with fetch (EventSource cannot send the token). Runtime actions are
 * the admin API's (drain, disable, enable, weight).
 *
 * The token: from the URL fragment (`/dashboard#token=…`, never sent to the server; removed from
 * the address bar at once) or the form, kept in sessionStorage (this tab only), sent as
 * `Authorization: Bearer` on every fetch. The page itself holds no data.
 *
 * Numbers the page shows are also in `data-*` attributes, for tests and scripts.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './dashboard.css';
import { bucketDelta, buckets, parseMetrics, quantile, rate, sumBy, total, type Sample } from './prom.ts';

const POLL_MS = 1000;
/** Rates over the last RATE_WINDOW_S seconds; percentiles and shares over PCT_WINDOW_S. */
const RATE_WINDOW_S = 5;
const PCT_WINDOW_S = 15;
/** Points kept in the charts (one per poll). */
const CHART_POINTS = 180;
const TAIL_ROWS = 200;
const TOKEN_KEY = 'switchboard-admin-token';

// ---- token ----

function takeTokenFromFragment(): void {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m === null) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]!));
  history.replaceState(null, '', location.pathname + location.search);
}

function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

function authHeaders(): HeadersInit {
  const t = token();
  return t === null || t === '' ? {} : { authorization: `Bearer ${t}` };
}

// ---- DOM helpers ----

function $(selector: string): HTMLElement {
  const el = document.querySelector<HTMLElement>(selector);
  if (el === null) throw new Error(`no ${selector} on the page`);
  return el;
}

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) el.append(c);
  return el;
}

function setStatus(text: string, error = false): void {
  const s = $('#status');
  s.textContent = text;
  s.classList.toggle('error', error);
}

const fmtRate = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const fmtMs = (seconds: number | undefined): string =>
  seconds === undefined ? '–' : seconds < 0.01 ? `${(seconds * 1000).toFixed(2)} ms` : `${(seconds * 1000).toFixed(1)} ms`;
const fmtInt = (n: number): string => Math.round(n).toLocaleString('en');

function setMetric(name: string, text: string, value?: number): void {
  const el = $(`[data-metric="${name}"]`);
  el.textContent = text;
  if (value !== undefined) el.dataset.value = String(value);
}

// ---- reading the metrics ----

/** What the page keeps of one scrape (not the whole text). */
interface Snapshot {
  t: number;
  requests: number;
  errors: number;
  byRoute: Map<string, number>;
  errorsByRoute: Map<string, number>;
  byUpstream: Map<string, number>;
  errorsByUpstream: Map<string, number>;
  latency: Map<number, number>;
  latencyByRoute: Map<string, Map<number, number>>;
  /** Picks by `upstream endpoint`. */
  picks: Map<string, number>;
}

const REQUESTS = 'switchboard_requests_total';
const DURATION = 'switchboard_request_duration_seconds';
const is5xx = (l: Record<string, string>): boolean => l.status_class === '5xx';

function snapshot(samples: Sample[], t: number): Snapshot {
  const latencyByRoute = new Map<string, Map<number, number>>();
  for (const route of sumBy(samples, `${DURATION}_count`, 'route').keys())
    latencyByRoute.set(
      route,
      buckets(samples, DURATION, (l) => l.route === route),
    );
  const picks = new Map<string, number>();
  for (const s of samples)
    if (s.name === 'switchboard_endpoint_picks_total')
      picks.set(`${s.labels.upstream} ${s.labels.endpoint}`, (picks.get(`${s.labels.upstream} ${s.labels.endpoint}`) ?? 0) + s.value);
  return {
    t,
    requests: total(samples, REQUESTS),
    errors: total(samples, REQUESTS, is5xx),
    byRoute: sumBy(samples, REQUESTS, 'route'),
    errorsByRoute: sumBy(samples, REQUESTS, 'route', is5xx),
    byUpstream: sumBy(samples, REQUESTS, 'upstream'),
    errorsByUpstream: sumBy(samples, REQUESTS, 'upstream', is5xx),
    latency: buckets(samples, DURATION),
    latencyByRoute,
    picks,
  };
}

const snapshots: Snapshot[] = [];

/** The oldest snapshot at most `seconds` older than the latest (else the oldest there is). */
function since(seconds: number): Snapshot | undefined {
  const last = snapshots[snapshots.length - 1];
  if (last === undefined || snapshots.length < 2) return undefined;
  for (const s of snapshots) if (last.t - s.t <= seconds && s !== last) return s;
  return snapshots[snapshots.length - 2];
}

// ---- charts ----

interface Charts {
  rate: uPlot;
  latency: uPlot;
  data: { t: number[]; rps: number[]; eps: number[]; p50: Array<number | null>; p90: Array<number | null>; p99: Array<number | null> };
}

let charts: Charts | undefined;

function chartSize(el: HTMLElement): { width: number; height: number } {
  return { width: Math.max(300, el.clientWidth - 4), height: 200 };
}

function makeCharts(): Charts {
  const data: Charts['data'] = { t: [], rps: [], eps: [], p50: [], p90: [], p99: [] };
  const rateEl = $('#chart-rate');
  const latencyEl = $('#chart-latency');
  const rate = new uPlot(
    {
      ...chartSize(rateEl),
      series: [{}, { label: 'req/s', stroke: '#2f6feb', width: 2 }, { label: '5xx/s', stroke: '#c62828', width: 2 }],
      scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [{}, { size: 50 }],
    },
    [[], [], []],
    rateEl,
  );
  const latency = new uPlot(
    {
      ...chartSize(latencyEl),
      series: [{}, { label: 'p50', stroke: '#1a7f37', width: 2 }, { label: 'p90', stroke: '#a15c00', width: 2 }, { label: 'p99', stroke: '#c62828', width: 2 }],
      scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [{}, { size: 50 }],
    },
    [[], [], [], []],
    latencyEl,
  );
  window.addEventListener('resize', () => {
    rate.setSize(chartSize(rateEl));
    latency.setSize(chartSize(latencyEl));
  });
  return { rate, latency, data };
}

function pushChart(c: Charts, t: number, rps: number, eps: number, p: Array<number | undefined>): void {
  const d = c.data;
  const ms = (v: number | undefined): number | null => (v === undefined ? null : v * 1000);
  d.t.push(t);
  d.rps.push(rps);
  d.eps.push(eps);
  d.p50.push(ms(p[0]));
  d.p90.push(ms(p[1]));
  d.p99.push(ms(p[2]));
  for (const a of Object.values(d)) if (a.length > CHART_POINTS) a.splice(0, a.length - CHART_POINTS);
  c.rate.setData([d.t, d.rps, d.eps]);
  c.latency.setData([d.t, d.p50, d.p90, d.p99]);
}

// ---- tables ----

function renderRoutes(last: Snapshot, rateBase: Snapshot | undefined, pctBase: Snapshot | undefined): void {
  const body = $('#routes tbody');
  const dt = rateBase === undefined ? 0 : last.t - rateBase.t;
  const rows: HTMLTableRowElement[] = [];
  const names = [...last.byRoute.keys()].sort();
  for (const route of names) {
    const n = last.byRoute.get(route) ?? 0;
    const rps = rate(n, rateBase?.byRoute.get(route) ?? (rateBase === undefined ? undefined : 0), dt);
    const eps = rate(last.errorsByRoute.get(route) ?? 0, rateBase?.errorsByRoute.get(route) ?? (rateBase === undefined ? undefined : 0), dt);
    const recent = bucketDelta(last.latencyByRoute.get(route) ?? new Map(), pctBase?.latencyByRoute.get(route));
    const errors = n === 0 ? 0 : (last.errorsByRoute.get(route) ?? 0) / n;
    rows.push(
      h(
        'tr',
        { 'data-route': route, 'data-requests': String(n), 'data-rps': rps.toFixed(3) },
        h('td', {}, route),
        h('td', { class: 'num' }, fmtRate(rps)),
        h('td', { class: 'num' }, fmtRate(eps)),
        h('td', { class: 'num' }, `${(errors * 100).toFixed(1)} %`),
        h('td', { class: 'num' }, fmtMs(quantile(0.5, recent))),
        h('td', { class: 'num' }, fmtMs(quantile(0.9, recent))),
        h('td', { class: 'num' }, fmtMs(quantile(0.99, recent))),
        h('td', { class: 'num' }, fmtInt(n)),
      ),
    );
  }
  body.replaceChildren(...rows);
  // The tail's route filter offers the routes seen.
  const select = document.querySelector<HTMLSelectElement>('#tail-form select[name=route]')!;
  const have = new Set([...select.options].map((o) => o.value));
  for (const route of names) if (!have.has(route)) select.append(h('option', { value: route }, route));
}

interface EndpointView {
  index: number;
  url: string;
  healthy: boolean;
  ejected: boolean;
  admin: string;
  weight: number;
  configWeight: number;
  inFlight: number;
  latencyMs: number;
  checked: boolean;
}

interface UpstreamView {
  name: string;
  balancer: string;
  endpoints: EndpointView[];
}

function renderUpstreams(ups: UpstreamView[], last: Snapshot, rateBase: Snapshot | undefined, pctBase: Snapshot | undefined): void {
  const container = $('#upstreams');
  const canChange = (token() ?? '') !== '';
  const note = $('#actions-note');
  note.hidden = canChange;
  note.textContent = 'Drain, disable, enable and weight need the admin token (admin.token in the config): enter it above. Without one the admin is read-only.';
  const dt = rateBase === undefined ? 0 : last.t - rateBase.t;
  // Keep what the operator is typing into a weight box across refreshes.
  const focused = document.activeElement instanceof HTMLInputElement && document.activeElement.classList.contains('weight') ? document.activeElement : undefined;
  const sections: HTMLElement[] = [];
  for (const u of ups) {
    const key = (e: EndpointView): string => `${u.name} ${e.url}`;
    let windowPicks = 0;
    for (const e of u.endpoints) windowPicks += (last.picks.get(key(e)) ?? 0) - (pctBase?.picks.get(key(e)) ?? 0);
    const rows = u.endpoints.map((e) => {
      const picks = last.picks.get(key(e)) ?? 0;
      const share = windowPicks > 0 ? Math.max(0, picks - (pctBase?.picks.get(key(e)) ?? 0)) / windowPicks : 0;
      const pps = rate(picks, rateBase?.picks.get(key(e)) ?? (rateBase === undefined ? undefined : 0), dt);
      const health = !e.checked
        ? h('span', { class: 'pill' }, 'unchecked')
        : e.healthy
          ? h('span', { class: 'pill ok' }, 'healthy')
          : h('span', { class: 'pill bad' }, 'unhealthy');
      const state = e.ejected
        ? h('span', { class: 'pill bad' }, 'ejected')
        : e.admin === 'enabled'
          ? h('span', { class: 'pill ok' }, 'enabled')
          : h('span', { class: 'pill warn' }, e.admin);
      const bar = h('span', { class: 'share' }, h('span'));
      (bar.firstChild as HTMLElement).style.width = `${(share * 100).toFixed(1)}%`;
      const action = (name: string, label: string): HTMLButtonElement => {
        const b = h('button', { type: 'button', 'data-action': name }, label);
        b.disabled = !canChange;
        if (!canChange) b.title = 'needs the admin token';
        b.addEventListener('click', () => void change(u.name, e, name));
        return b;
      };
      const weight = h('input', { class: 'weight', type: 'number', min: '1', max: '1000', step: '1', value: String(e.weight), 'aria-label': `weight of ${e.url}` });
      weight.disabled = !canChange;
      const id = `${u.name} ${e.index}`;
      weight.dataset.id = id;
      if (focused?.dataset.id === id) weight.value = focused.value;
      const setWeight = h('button', { type: 'button', 'data-action': 'weight' }, 'Set weight');
      setWeight.disabled = !canChange;
      if (!canChange) setWeight.title = 'needs the admin token';
      setWeight.addEventListener('click', () => void change(u.name, e, 'weight', Number(weight.value)));
      return h(
        'tr',
        {
          'data-upstream': u.name,
          'data-endpoint': e.url,
          'data-admin': e.admin,
          'data-healthy': String(e.healthy),
          'data-picks': String(picks),
          'data-share': share.toFixed(4),
        },
        h('td', { class: 'wrap' }, e.url),
        h('td', {}, health),
        h('td', {}, state),
        h('td', { class: 'num' }, e.weight === e.configWeight ? String(e.weight) : `${e.weight} (config ${e.configWeight})`),
        h('td', { class: 'num' }, String(e.inFlight)),
        h('td', { class: 'num' }, e.latencyMs > 0 ? `${e.latencyMs.toFixed(1)} ms` : '–'),
        h('td', { class: 'num' }, fmtRate(pps)),
        h('td', {}, bar, `${(share * 100).toFixed(0)} %`),
        h('td', { class: 'num' }, fmtInt(picks)),
        h('td', {}, action('drain', 'Drain'), ' ', action('disable', 'Disable'), ' ', action('enable', 'Enable'), ' ', weight, ' ', setWeight),
      );
    });
    const n = last.byUpstream.get(u.name) ?? 0;
    const rps = rate(n, rateBase?.byUpstream.get(u.name) ?? (rateBase === undefined ? undefined : 0), dt);
    const eps = rate(last.errorsByUpstream.get(u.name) ?? 0, rateBase?.errorsByUpstream.get(u.name) ?? (rateBase === undefined ? undefined : 0), dt);
    sections.push(
      h(
        'div',
        { class: 'upstream', 'data-upstream': u.name, 'data-rps': rps.toFixed(3) },
        h('h3', {}, `${u.name} `, h('span', { class: 'muted' }, `${u.balancer} · ${fmtRate(rps)} req/s · ${fmtRate(eps)} 5xx/s · ${fmtInt(n)} requests`)),
        h(
          'table',
          {},
          h(
            'thead',
            {},
            h('tr', {}, ...['endpoint', 'health', 'state', 'weight', 'in flight', 'latency', 'picks/s', 'share', 'picks', 'actions'].map((c) => h('th', {}, c))),
          ),
          h('tbody', {}, ...rows),
        ),
      ),
    );
  }
  container.replaceChildren(...sections);
  if (focused !== undefined) {
    const again = container.querySelector<HTMLInputElement>(`input.weight[data-id="${CSS.escape(focused.dataset.id ?? '')}"]`);
    again?.focus();
  }
}

async function change(upstream: string, e: EndpointView, action: string, weight?: number): Promise<void> {
  const path = `/api/upstreams/${encodeURIComponent(upstream)}/endpoints/${e.index}/${action}`;
  try {
    const res = await fetch(path, {
      method: action === 'weight' ? 'PUT' : 'POST',
      headers: { ...authHeaders(), 'content-type': 'application/json' },
      body: action === 'weight' ? JSON.stringify({ weight }) : '{}',
    });
    const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
    if (!res.ok) setStatus(`${action} ${e.url}: ${body.error?.message ?? res.statusText}`, true);
    else setStatus(`${action} ${e.url}: done (until the next reload)`);
  } catch (err) {
    setStatus(`${action} ${e.url}: ${(err as Error).message}`, true);
  }
  await poll();
}

// ---- polling ----

let polling = false;

async function poll(): Promise<void> {
  if (polling) return;
  polling = true;
  try {
    const [m, u] = await Promise.all([fetch('/metrics', { headers: authHeaders() }), fetch('/api/upstreams', { headers: authHeaders() })]);
    if (m.status === 401 || u.status === 401) {
      setStatus(token() === null ? 'This admin needs its token: enter it above.' : 'The token was refused: enter the admin token above.', true);
      return;
    }
    const ups = (u.ok ? await u.json() : []) as UpstreamView[];
    const t = Date.now() / 1000;
    let last: Snapshot;
    if (m.ok) {
      last = snapshot(parseMetrics(await m.text()), t);
    } else {
      last = snapshot([], t);
      setStatus(m.status === 404 ? 'Metrics are off (metrics.enabled: false): rates and latency are not shown.' : `GET /metrics: ${m.status}`, true);
    }
    snapshots.push(last);
    while (snapshots.length > 0 && last.t - snapshots[0]!.t > PCT_WINDOW_S + 2) snapshots.shift();
    const rateBase = since(RATE_WINDOW_S);
    const pctBase = since(PCT_WINDOW_S);
    const dt = rateBase === undefined ? 0 : last.t - rateBase.t;
    const rps = rate(last.requests, rateBase?.requests, dt);
    const eps = rate(last.errors, rateBase?.errors, dt);
    const recent = bucketDelta(last.latency, pctBase?.latency);
    const p = [quantile(0.5, recent), quantile(0.9, recent), quantile(0.99, recent)];
    setMetric('rps', fmtRate(rps), rps);
    setMetric('eps', fmtRate(eps), eps);
    setMetric('p50', fmtMs(p[0]));
    setMetric('p90', fmtMs(p[1]));
    setMetric('p99', fmtMs(p[2]));
    setMetric('requests-total', fmtInt(last.requests), last.requests);
    charts ??= makeCharts();
    pushChart(charts, t, rps, eps, p);
    renderRoutes(last, rateBase, pctBase);
    renderUpstreams(ups, last, rateBase, pctBase);
    if (m.ok && u.ok && !$('#status').classList.contains('error')) setStatus(`updated ${new Date().toLocaleTimeString()}`);
    else if (m.ok && u.ok) setTimeout(() => $('#status').classList.remove('error'), 4000);
  } catch (err) {
    setStatus(`cannot reach the admin: ${(err as Error).message}`, true);
  } finally {
    polling = false;
  }
}

async function loop(): Promise<void> {
  await poll();
  setTimeout(() => void loop(), POLL_MS);
}

// ---- the access log tail ----

interface AccessLine {
  time: string;
  requestId: string;
  status: number;
  method: string;
  host: string;
  path: string;
  route: string | null;
  upstream: string | null;
  endpoint: string | null;
  totalMs: number;
  error: string | null;
}

let tailAbort: AbortController | undefined;
let paused = false;

function tailRow(line: string): HTMLTableRowElement | undefined {
  let r: AccessLine;
  try {
    r = JSON.parse(line) as AccessLine;
  } catch {
    return undefined;
  }
  return h(
    'tr',
    { class: `s${String(r.status).charAt(0)}`, 'data-request-id': r.requestId, 'data-status': String(r.status), 'data-path': r.path, 'data-route': r.route ?? '' },
    h('td', {}, r.time.slice(11, 23)),
    h('td', { class: 'st num' }, String(r.status)),
    h('td', {}, r.method),
    h('td', { class: 'wrap' }, r.host + r.path),
    h('td', {}, r.route ?? '–'),
    h('td', { class: 'wrap' }, r.endpoint ?? '–'),
    h('td', { class: 'num' }, String(r.totalMs)),
    h('td', {}, r.error ?? ''),
  );
}

function showLines(lines: string[]): void {
  if (paused || lines.length === 0) return;
  const body = $('#tail tbody');
  const rows = lines.map(tailRow).filter((r): r is HTMLTableRowElement => r !== undefined);
  body.prepend(...rows.reverse());
  while (body.childElementCount > TAIL_ROWS) body.lastElementChild!.remove();
}

let dropped = 0;

function tailState(text: string): void {
  $('#tail-state').textContent = text;
}

async function tail(): Promise<void> {
  tailAbort?.abort();
  const abort = new AbortController();
  tailAbort = abort;
  const form = new FormData($('#tail-form') as HTMLFormElement);
  const q = new URLSearchParams();
  for (const k of ['route', 'status', 'q']) {
    const v = String(form.get(k) ?? '');
    if (v !== '') q.set(k, v);
  }
  try {
    const res = await fetch(`/api/access-log/stream?${q}`, { headers: authHeaders(), signal: abort.signal });
    if (!res.ok || res.body === null) {
      tailState(res.status === 401 ? '(needs the admin token)' : `(stream refused: ${res.status})`);
      if (res.status !== 401) setTimeout(() => abort === tailAbort && void tail(), 3000);
      return;
    }
    tailState('(live)');
    $('#tail').dataset.live = 'true';
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end = buffer.indexOf('\n\n');
      const lines: string[] = [];
      while (end !== -1) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
        let event = 'message';
        let data = '';
        for (const l of frame.split('\n')) {
          if (l.startsWith('event: ')) event = l.slice(7);
          else if (l.startsWith('data: ')) data += l.slice(6);
        }
        if (event === 'message' && data !== '') lines.push(data);
        else if (event === 'dropped') {
          dropped += (JSON.parse(data) as { dropped: number }).dropped;
          tailState(`(live; ${dropped} lines dropped: too many to show)`);
        }
      }
      showLines(lines);
    }
    $('#tail').dataset.live = 'false';
    tailState('(reconnecting…)');
    setTimeout(() => abort === tailAbort && void tail(), 1000);
  } catch (err) {
    if (abort.signal.aborted) return;
    $('#tail').dataset.live = 'false';
    tailState(`(reconnecting: ${(err as Error).message})`);
    setTimeout(() => abort === tailAbort && void tail(), 3000);
  }
}

// ---- start ----

function start(): void {
  takeTokenFromFragment();
  $('#token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $('#token') as HTMLInputElement;
    if (input.value !== '') sessionStorage.setItem(TOKEN_KEY, input.value);
    input.value = '';
    setStatus('token set for this tab');
    void poll();
    void tail();
  });
  $('#token-forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    setStatus('token forgotten');
    void poll();
    void tail();
  });
  const tailForm = $('#tail-form') as HTMLFormElement;
  tailForm.addEventListener('submit', (ev) => ev.preventDefault());
  let debounce: ReturnType<typeof setTimeout> | undefined;
  tailForm.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      $('#tail tbody').replaceChildren();
      void tail();
    }, 300);
  });
  $('#tail-pause').addEventListener('click', (ev) => {
    paused = !paused;
    (ev.target as HTMLButtonElement).textContent = paused ? 'Resume' : 'Pause';
  });
  $('#tail-clear').addEventListener('click', () => $('#tail tbody').replaceChildren());
  void fetch('/api/version', { headers: authHeaders() })
    .then((r) => (r.ok ? (r.json() as Promise<{ version: string; node: string }>) : undefined))
    .then((v) => {
      if (v !== undefined) $('#meta').textContent = `${v.version} · Node ${v.node} · ${location.host}`;
    })
    .catch(() => undefined);
  void loop();
  void tail();
}

start();
