/**
 * The sidecar's entry, bundled on its own (dist/cli/sidecar.mjs): one runs
 * beside every container, so it loads only the sidecar's parts, never the
 * daemon's watcher, aggregator, status page or metrics. bin.cjs sends
 * `nachos-sentinel sidecar ...` here; everything else goes to main.ts.
 */
import { runEntry } from './entry.js';
import { sidecar } from './sidecar.js';

runEntry(process.argv.slice(2), (cli) => sidecar(cli, process.env, process.cwd()));
