/**
 * The layer rules of docs/architecture.md ("Layers"), checked by `npm run lint` (and so by
 * `npm test` and CI): `depcruise src test scripts bench --config .dependency-cruiser.mjs`.
 *
 * A module may import modules of its own layer, or of layers below it; type-only imports count too
 * (`tsPreCompilationDeps`). Tests (`*.test.ts`, `test/**`) are exempt from the layer order, not from
 * the cycle rules. When the diagram in docs/architecture.md changes, change LAYERS here with it.
 */

/** Top to bottom: each entry's modules may import only its own entry's and those below it. */
const LAYERS = [
  ['cli', '^src/cli/'],
  ['process', '^src/process/'],
  ['index', '^src/index[.]ts$'],
  ['admin', '^src/admin/'],
  ['api', '^src/gateway[.]ts$'],
  ['generation', '^src/generation[.]ts$'],
  ['listeners', '^src/listeners/'],
  ['forward', '^src/forward/'],
  ['http', '^src/http/'],
  ['routing', '^src/routing/'],
  ['upstream', '^src/upstream/'],
  ['health', '^src/health/'],
  ['transport', '^src/transport/'],
  ['state', '^src/state/'],
  ['observability', '^src/observability/'],
  ['config', '^src/config/'],
  ['policies', '^src/policies/'],
  ['leaves', '^src/(util/|errors[.]ts$)'],
];

const TESTS = '([.]test[.]ts$|^test/)';
const SIMULATE = '^src/simulate/';
/** The dashboard's browser code, and the module that serves (and, in a checkout, bundles) it. */
const DASHBOARD_PAGE = '^src/admin/dashboard/';
const DASHBOARD_LOADER = '^src/admin/dashboard-assets[.]ts$';
const either = (patterns) => patterns.map((p) => `(${p})`).join('|');

const layerRules = LAYERS.slice(1).map(([name, path], i) => ({
  name: `layer-${name}`,
  comment: `${name} (${path}) may import only its own layer and those below it (docs/architecture.md)`,
  severity: 'error',
  from: { path, pathNot: TESTS },
  // Everything above this layer, and the simulator (imported by the cli alone).
  to: { path: either([...LAYERS.slice(0, i + 1).map(([, p]) => p), SIMULATE]) },
}));

export const options = {
  doNotFollow: { path: 'node_modules' },
  tsPreCompilationDeps: true,
  tsConfig: { fileName: 'tsconfig.json' },
  enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
};

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycle between files, tests included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'layer-unknown',
      comment: 'Every module of src/ belongs to a layer: a new folder goes into docs/architecture.md and LAYERS first.',
      severity: 'error',
      from: { path: '^src/', pathNot: either([TESTS, SIMULATE, ...LAYERS.map(([, p]) => p)]) },
      to: {},
    },
    {
      name: 'layer-unknown-target',
      comment: 'Every module of src/ belongs to a layer: a new folder goes into docs/architecture.md and LAYERS first.',
      severity: 'error',
      from: {},
      to: { path: '^src/', pathNot: either([TESTS, SIMULATE, ...LAYERS.map(([, p]) => p)]) },
    },
    {
      name: 'simulate-layer',
      comment: 'The simulator may import upstream/balancers/ and the layers below upstream/, nothing above.',
      severity: 'error',
      from: { path: SIMULATE, pathNot: TESTS },
      to: { path: either([...LAYERS.slice(0, 8).map(([, p]) => p), '^src/upstream/(?!balancers/)']) },
    },
    {
      name: 'balancers-self-contained',
      comment:
        'src/upstream/balancers/ (the Balancer contract, the algorithms, hashing, latency) imports nothing else of src/upstream/: ' +
        'the simulator drives it alone, and upstream/ -> balancers/ stays one-way (no folder cycle).',
      severity: 'error',
      from: { path: '^src/upstream/balancers/', pathNot: TESTS },
      to: { path: '^src/upstream/(?!balancers/)' },
    },
    {
      name: 'leaves-util',
      comment: 'src/util/ is a leaf: it imports nothing of src but src/util/.',
      severity: 'error',
      from: { path: '^src/util/', pathNot: TESTS },
      to: { path: '^src/', pathNot: '^src/util/' },
    },
    {
      name: 'leaves-errors',
      comment: 'src/errors.ts (the error table) is a leaf: it imports nothing of src.',
      severity: 'error',
      from: { path: '^src/errors[.]ts$' },
      to: { path: '^src/' },
    },
    {
      name: 'transport-not-http',
      comment: 'The transport reports to a sink and never writes to the client: src/transport/ must not import src/http/.',
      severity: 'error',
      from: { path: '^src/transport/', pathNot: TESTS },
      to: { path: '^src/http/' },
    },
    {
      name: 'policy-type-isolated',
      comment:
        'A policy type (src/policies/<type>/) imports only the filter contract, the helpers a family of types shares (src/policies/*.ts such as auth-common.ts, not the registry), its own folder and src/util/ (and npm packages).',
      severity: 'error',
      from: { path: '^src/policies/([^/]+)/', pathNot: TESTS },
      to: { path: '^src/', pathNot: either(['^src/policies/(?!registry[.]ts$)[^/]+[.]ts$', '^src/policies/$1/', '^src/util/']) },
    },
    {
      name: 'policy-types-via-registry',
      comment: 'The gateway reaches policy types through src/policies/registry.ts and the filter contract, never through a policy folder.',
      severity: 'error',
      from: { path: '^src/', pathNot: either([TESTS, '^src/policies/']) },
      to: { path: '^src/policies/[^/]+/' },
    },
    {
      name: 'src-not-to-dev-dep',
      comment:
        'Code under src/ (tests aside) ships: it may not import a devDependency. Except the dashboard page (src/admin/dashboard/: bundled with uPlot at build time, never run by Node) and its loader (below).',
      severity: 'error',
      from: { path: '^src/', pathNot: either([TESTS, DASHBOARD_PAGE, DASHBOARD_LOADER]) },
      to: { dependencyTypes: ['npm-dev'] },
    },
    {
      name: 'dashboard-loader-esbuild-only',
      comment: 'The dashboard loader imports esbuild (dynamically, only in a checkout without a build) and no other devDependency.',
      severity: 'error',
      from: { path: DASHBOARD_LOADER },
      to: { dependencyTypes: ['npm-dev'], pathNot: '(^|/)node_modules/esbuild/' },
    },
  ],
  options,
};
