// The layers of src/ as import rules (docs/architecture.md, "Layers"). Checked by test/unit/layers.test.ts
// (part of `npm test`) and by `npm run lint:layers`, which prints every violating import.
//
//   cli → workers → workflows → activities → services → adapters → domain → contracts / config / logging / metrics / lib
//   venue: imported only by workers/exchange-sim.ts; imports domain and below, and of adapters only the Broker
//          port and the Alpaca wire vocabulary (src/venue/index.ts).
//
// A layer may import any layer below it, never one above it. Type-only imports count too: a type is a
// dependency on the module that owns the idea.

/** Top-level folders of src/, highest first. */
const LAYERS = ['cli', 'workers', 'workflows', 'activities', 'services', 'adapters', 'domain'];
/** The foundation every layer may use; it imports nothing above itself. */
const FOUNDATION = ['contracts', 'config', 'logging', 'metrics', 'lib'];

const dir = (names) => `^src/(${names.join('|')})/`;

/** Layer i may not import layers 0..i-1 (nor the venue, which only its worker starts). */
const upward = LAYERS.slice(1).map((layer, i) => ({
  name: `${layer}-imports-no-higher-layer`,
  comment: `src/${layer} sits below ${LAYERS.slice(0, i + 1).join(', ')}: it must not import them.`,
  severity: 'error',
  from: { path: dir([layer]) },
  to: { path: dir(LAYERS.slice(0, i + 1)) },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-import-cycles',
      comment: 'Import loops make module initialisation order matter and blur which module owns what.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    ...upward,
    {
      name: 'foundation-imports-no-layer',
      comment: `${FOUNDATION.join(', ')} are used by every layer, so they import none of them.`,
      severity: 'error',
      from: { path: dir(FOUNDATION) },
      to: { path: dir([...LAYERS, 'venue']) },
    },
    {
      name: 'contracts-and-lib-stand-alone',
      comment:
        'Message contracts and lib helpers are imported by workflow code and by everything else: they import no other src module (contracts may use lib).',
      severity: 'error',
      from: { path: '^src/(contracts|lib)/' },
      to: { path: '^src/', pathNot: ['^src/(contracts|lib)/'] },
    },
    {
      name: 'logging-and-metrics-read-no-config',
      comment: 'config uses logging (LOG_LEVEL); logging and metrics take their settings as arguments.',
      severity: 'error',
      from: { path: '^src/(logging|metrics)/' },
      to: { path: '^src/config/' },
    },
    {
      name: 'domain-is-pure',
      comment: 'The domain is pure and seeded: no I/O modules (files, network, processes, databases, brokers, logs).',
      severity: 'error',
      from: { path: '^src/domain/' },
      to: {
        path: [
          '^(node:)?(fs|fs/promises|net|http|https|http2|dgram|dns|tls|child_process|cluster|worker_threads|readline)$',
          '^(pg|amqplib|ws|pino|dotenv)$',
          '^src/(logging|metrics)/',
        ],
      },
    },
    {
      name: 'workflows-import-activity-types-only',
      comment:
        "Workflow code runs in Temporal's deterministic sandbox: activities are proxied by type (createActivities factory, `import type`).",
      severity: 'error',
      from: { path: '^src/workflows/' },
      to: { path: '^src/activities/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'workflows-do-no-io',
      comment:
        'Workflow code does no I/O: no adapters, services, config, logging or metrics (ESLint also checks the sandbox).',
      severity: 'error',
      from: { path: '^src/workflows/' },
      to: { path: '^src/(adapters|services|config|logging|metrics|lib)/' },
    },
    {
      name: 'only-the-exchange-sim-worker-starts-the-venue',
      comment:
        'The pipeline reaches the venue over the wire (the AlpacaBroker adapter), exactly as it reaches Alpaca; only workers/exchange-sim.ts (and tests) run it in-process.',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/venue/', '^src/workers/exchange-sim\\.ts$'] },
      to: { path: '^src/venue/' },
    },
    {
      name: 'venue-stays-beside-the-pipeline',
      comment: 'The venue is the far side of the broker wire: it imports no pipeline layer.',
      severity: 'error',
      from: { path: '^src/venue/' },
      to: { path: '^src/(cli|workers|workflows|activities|services)/' },
    },
    {
      name: 'venue-uses-only-the-broker-port-and-wire',
      comment:
        'Of the adapters, the venue uses only the Broker port it implements and the Alpaca wire vocabulary it serves.',
      severity: 'error',
      from: { path: '^src/venue/' },
      to: {
        path: '^src/adapters/',
        pathNot: ['^src/adapters/brokers/broker\\.ts$', '^src/adapters/brokers/alpaca/wire\\.ts$'],
      },
    },
    {
      name: 'no-unresolvable-imports',
      comment: 'Every import resolves (a typo or a moved file is caught here too, not only by tsc).',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules' },
    // Type-only imports are dependencies too (a workflow's `import type` of activities is checked above).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
