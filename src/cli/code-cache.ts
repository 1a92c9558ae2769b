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

function wrap(source: string): string {
  return `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
}

/** Loads a CommonJS file with its code cache, when there is one. */
export function requireWithCodeCache<T>(file: string): T {
  const cacheFile = `${file}.cache`;
  const cachedData = existsSync(cacheFile) ? readFileSync(cacheFile) : undefined;
  const script = new Script(wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
  const module = { exports: {} as T };
  const run = script.runInThisContext() as (e: unknown, r: NodeJS.Require, m: unknown, f: string, d: string) => void;
  run(module.exports, createRequire(file), module, file, path.dirname(file));
  return module.exports;
}

/** Writes `<file>.cache` after loading the file once (so lazily compiled functions are in it too). */
export function writeCodeCache(relativeFile: string): number {
  const file = path.resolve(relativeFile);
  const script = new Script(wrap(readFileSync(file, 'utf8')), { filename: file });
  const module = { exports: {} };
  const run = script.runInThisContext() as (e: unknown, r: NodeJS.Require, m: unknown, f: string, d: string) => void;
  run(module.exports, createRequire(file), module, file, path.dirname(file));
  const data = script.createCachedData();
  writeFileSync(`${file}.cache`, data);
  return data.byteLength;
}
