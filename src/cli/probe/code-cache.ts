import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Script } from 'node:vm';

/**
 * V8 code cache for a CommonJS bundle: what Node 22's module compile cache
 * does, for Node 20. The probe's NATS client bundle compiles in about 17 ms;
 * from its cache, in about 10 ms, on every probe run. The cache is written at
 * build time, next to the bundle (`<file>.cache`); a cache that does not match
 * this Node is ignored by V8, and the bundle compiles as usual.
 */

/** Compiles a CommonJS file (with `cachedData` when given) and runs it as `require` would. */
function load(file: string, cachedData?: Buffer): { script: Script; exports: unknown } {
  const source = `(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`;
  const script = new Script(source, { filename: file, cachedData });
  const module = { exports: {} };
  const run = script.runInThisContext() as (e: unknown, r: NodeJS.Require, m: unknown, f: string, d: string) => void;
  run(module.exports, createRequire(file), module, file, path.dirname(file));
  return { script, exports: module.exports };
}

/** Loads a CommonJS file with its code cache, when there is one. */
export function requireWithCodeCache<T>(file: string): T {
  const cacheFile = `${file}.cache`;
  return load(file, existsSync(cacheFile) ? readFileSync(cacheFile) : undefined).exports as T;
}

/** Writes `<file>.cache` after loading the file once (so lazily compiled functions are in it too). */
export function writeCodeCache(relativeFile: string): number {
  const file = path.resolve(relativeFile);
  const data = load(file).script.createCachedData();
  writeFileSync(`${file}.cache`, data);
  return data.byteLength;
}
