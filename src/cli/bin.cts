#!/usr/bin/env node
/**
 * The executable's entry. CommonJS on purpose: the `--once` probe runs every
 * few seconds in every container, and a CommonJS entry that loads the
 * pre-bundled probe (dist/cli/once.cjs, built by `npm run build`) skips the
 * ES module loader's start-up cost. Everything else goes to the ES module
 * dispatcher in main.ts, bundled into dist/cli/daemon.mjs: one file instead of
 * hundreds of modules saves the daemon about 4 MB.
 */
const argv = process.argv.slice(2);
// Node 22 and later cache the compiled code of every module loaded from here on, natively (in the OS
// temporary directory).
const nodeModule = require('node:module') as { enableCompileCache?: () => unknown };
nodeModule.enableCompileCache?.();
if (argv.includes('--once')) {
  const probe = require('./once.cjs') as { once(argv: string[], env: NodeJS.ProcessEnv): Promise<number> };
  // The probe writes its output synchronously, so nothing is lost by exiting at once
  // rather than waiting for its socket to finish closing.
  void probe.once(argv, process.env).then((code) => process.exit(code));
} else {
  // A specifier in a variable: the bundles are built after the type check, which must not look for them.
  // The sidecar, one beside every container, loads its own bundle: none of the daemon's parts.
  const entry = argv[0] === 'sidecar' ? './sidecar.mjs' : './daemon.mjs';
  void import(entry);
}
