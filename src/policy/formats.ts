import { createRequire } from 'node:module';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { Document } from 'yaml';
import { keyPositions, locate as locateToml, type Position, type ValuePath } from '../text/toml-positions.js';

/**
 * The file formats a policy (or another watched file) may be written in:
 * TOML, as this project writes them, and YAML, as Nachos' own policy
 * directory does. Each parses to plain data, plus a way to find where a value
 * is written, for error positions.
 */
export type Parsed = { ok: true; value: unknown; locate: (path: ValuePath) => Position | undefined } | { ok: false; line?: number; column?: number; message: string };

/**
 * The YAML parser, loaded on the first YAML file: most sets are TOML only, and
 * the parser costs the daemon about 4 MB when loaded.
 */
let yamlModule: typeof import('yaml') | undefined;
function yaml(): typeof import('yaml') {
  yamlModule ??= createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yamlModule;
}

/** YAML aliases expand; a bounded count keeps a "billion laughs" file from exhausting memory. */
const MAX_YAML_ALIASES = 100;
/**
 * Nesting refused before parsing. A policy nests about six levels. Deeper
 * input makes the parsers recurse towards the stack limit, and a second deep
 * YAML parse in one process can then abort Node outright (V8 fails to compile
 * a regular expression that close to the limit: "RegExpCompiler Allocation
 * failed"), so such files never reach the parsers.
 */
export const MAX_NESTING = 64;

/**
 * A text as Nachos' policy loader reads it: `yaml`'s `parse` with its
 * defaults (what the loader calls), warnings not printed. Undefined when it
 * throws: the loader then drops the file.
 */
export function parseAsNachos(text: string): { doc: unknown } | undefined {
  try {
    return { doc: yaml().parse(text, { logLevel: 'error' }) as unknown };
  } catch {
    return undefined;
  }
}

export function isYaml(path: string): boolean {
  return /\.ya?ml$/i.test(path);
}

export function parseByFormat(path: string, source: string): Parsed {
  return isYaml(path) ? parseYaml(source) : parseTomlText(source);
}

function parseTomlText(source: string): Parsed {
  try {
    const value = parseToml(source, { maxDepth: MAX_NESTING });
    // Positions are only needed to report a problem; most files have none, so they are found lazily.
    let positions: ReturnType<typeof keyPositions> | undefined;
    return { ok: true, value, locate: (path) => locateToml((positions ??= keyPositions(source)), path) };
  } catch (err) {
    if (err instanceof TomlError) {
      const message = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
      return { ok: false, line: err.line, column: err.column, message: `TOML syntax: ${message}` };
    }
    // Deep nesting can exhaust the stack; that is bad input, not a crash.
    return { ok: false, message: `TOML could not be parsed: ${String(err)}` };
  }
}

function parseYaml(source: string): Parsed {
  const deep = yamlNesting(source);
  if (deep) return { ok: false, line: deep.line, column: 1, message: `YAML nested deeper than ${MAX_NESTING} levels` };
  try {
    const { LineCounter, parseDocument } = yaml();
    const lines = new LineCounter();
    const doc = parseDocument(source, { lineCounter: lines, uniqueKeys: true, prettyErrors: false, strict: true });
    const error = doc.errors[0];
    if (error) {
      const at = lines.linePos(error.pos[0]);
      const message = error.message.split('\n')[0] ?? error.message;
      return { ok: false, line: at.line, column: at.col, message: `YAML syntax: ${message}` };
    }
    const value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) as unknown;
    return { ok: true, value, locate: (path) => locateYaml(doc, lines, path) };
  } catch (err) {
    return { ok: false, message: `YAML could not be parsed: ${(err as Error).message.split('\n')[0] ?? String(err)}` };
  }
}

/**
 * Where a YAML text nests deeper than MAX_NESTING, if it does: by indentation
 * and compact sequences (`- - - x`) within a line, and by flow brackets across
 * lines. Conservative and cheap: it only has to catch what no policy does.
 */
function yamlNesting(source: string): { line: number } | undefined {
  let flow = 0;
  const lines = source.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const lead = /^[ \t-]*/.exec(line)?.[0] ?? '';
    const block = Math.floor(lead.replace(/-/g, '  ').length / 2);
    if (block > MAX_NESTING) return { line: i + 1 };
    for (const ch of line) {
      if (ch === '[' || ch === '{') {
        if (block + ++flow > MAX_NESTING) return { line: i + 1 };
      } else if (ch === ']' || ch === '}') {
        flow = Math.max(0, flow - 1);
      }
    }
  }
  return undefined;
}

/** The position of a map key (or a sequence item), or of the nearest ancestor that exists. */
function locateYaml(doc: Document, lines: InstanceType<typeof import('yaml').LineCounter>, path: ValuePath): Position | undefined {
  const { isMap, isSeq } = yaml();
  for (let n = path.length; n > 0; n--) {
    const parent = n === 1 ? doc.contents : doc.getIn(path.slice(0, n - 1), true);
    const last = path[n - 1];
    let offset: number | undefined;
    if (isMap(parent)) {
      const pair = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === last);
      offset = (pair?.key as { range?: [number, number, number] } | null)?.range?.[0];
    } else if (isSeq(parent) && typeof last === 'number') {
      offset = (parent.items[last] as { range?: [number, number, number] } | null)?.range?.[0];
    }
    if (offset !== undefined) {
      const { line, col } = lines.linePos(offset);
      return { line, column: col };
    }
  }
  return undefined;
}
