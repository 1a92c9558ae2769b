/**
 * Builds the bundles bin.cjs loads: the daemon (dist/cli/daemon.mjs), the
 * sidecar (dist/cli/sidecar.mjs), and the `--once` probe (dist/cli/once.cjs,
 * with its bus path in dist/cli/probe-bus.cjs). `npm run build` runs it after
 * the type check.
 *
 * In the two ES module bundles, Node's built-in modules are required as
 * CommonJS, never imported. An ES module import of a built-in makes Node build
 * its module facade, which reads every export: on Node 22 and later that runs
 * node:http's lazy `WebSocket` getter, which loads undici (fetch), and node:fs's
 * `promises` getter, which loads fs/promises and readline. Measured on Node 24:
 * `import 'node:http'` costs 13 MB more resident memory than requiring it, and
 * `import 'node:fs'` 2 MB. test/unit/bundles.test.ts checks that neither bundle
 * loads undici on the Node that runs the suite.
 */
import { builtinModules } from 'node:module';
import { build } from 'esbuild';

const builtin = new RegExp(`^(node:)?(${builtinModules.map((m) => m.replace(/[/]/g, '\\/')).join('|')})$`);

/** Every import of a built-in becomes `require`, through the banner's createRequire. */
const builtinsAsCommonJs = {
  name: 'builtins-as-commonjs',
  setup(b) {
    b.onResolve({ filter: builtin }, (args) =>
      args.namespace === 'builtin' ? { path: args.path, external: true } : { path: args.path, namespace: 'builtin' },
    );
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

const common = { bundle: true, platform: 'node', target: 'node20', logLevel: 'warning' };
const esm = {
  ...common,
  format: 'esm',
  banner: { js: "import { createRequire as __nodeRequire } from 'node:module'; const require = __nodeRequire(import.meta.url);" },
  plugins: [builtinsAsCommonJs],
};

await Promise.all([
  build({ ...esm, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli/daemon.mjs' }),
  build({ ...esm, entryPoints: ['src/cli/sidecar-main.ts'], outfile: 'dist/cli/sidecar.mjs', minify: true }),
  build({ ...common, format: 'cjs', minify: true, entryPoints: ['src/cli/probe/once.ts'], outfile: 'dist/cli/once.cjs', external: ['smol-toml', './probe-bus.js'] }),
  build({ ...common, format: 'cjs', minify: true, entryPoints: ['src/cli/probe/probe-bus.ts'], outfile: 'dist/cli/probe-bus.cjs', external: ['@nats-io/transport-node'] }),
]);
