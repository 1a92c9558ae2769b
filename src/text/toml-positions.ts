/**
 * Where each key of a TOML document is written, so that a schema error found
 * in the parsed value can be reported as `file:line:col`. smol-toml gives
 * positions for syntax errors only; this scan recovers them for keys.
 *
 * It runs only on text that already parsed, so it can be forgiving: it knows
 * table headers, arrays of tables, dotted keys, inline tables and arrays
 * (across lines), strings and comments, which is all that decides where a
 * key is.
 */

export interface Position {
  line: number;
  column: number;
}

export type ValuePath = ReadonlyArray<string | number>;

type Frame = { kind: 'table'; path: ValuePath } | { kind: 'array'; path: ValuePath; index: number };

/** Deeper than this, positions stop being tracked: TOML parsers refuse such nesting anyway, and paths would cost O(depth²). */
const MAX_DEPTH = 1000;

const BARE_KEY = /^[A-Za-z0-9_-]+/;

/** Maps every key path in `source` to the position of its key. */
export function keyPositions(source: string): Map<string, Position> {
  const positions = new Map<string, Position>();
  const arrayCounts = new Map<string, number>();
  let table: ValuePath = [];
  // Containers open inside a value (inline tables and arrays), which may span lines.
  const stack: Frame[] = [];
  const lines = source.split(/\r?\n/);
  let inMultiline: '"""' | "'''" | undefined;

  // Resolves a header's dotted path, inserting the current index of any array of tables.
  const resolve = (keys: string[]): (string | number)[] => {
    const out: (string | number)[] = [];
    for (const key of keys) {
      out.push(key);
      const count = arrayCounts.get(pathKey(out));
      if (count !== undefined) out.push(count);
    }
    return out;
  };

  for (let i = 0; i < lines.length && stack.length <= MAX_DEPTH; i++) {
    const line = lines[i] as string;
    let col = 0;

    if (inMultiline) {
      const end = line.indexOf(inMultiline);
      if (end < 0) continue;
      col = end + 3;
      inMultiline = undefined;
    }

    if (stack.length === 0) {
      const header = /^\s*(\[\[?)\s*(.*?)\s*\]\]?\s*(#.*)?$/.exec(line);
      if (header && header[2]) {
        const keys = parseDottedKey(header[2])?.keys;
        if (!keys) continue;
        if (header[1] === '[[') {
          const parent = resolve(keys.slice(0, -1));
          const arrayPath = [...parent, keys[keys.length - 1] as string];
          const index = (arrayCounts.get(pathKey(arrayPath)) ?? -1) + 1;
          arrayCounts.set(pathKey(arrayPath), index);
          table = [...arrayPath, index];
          record(positions, arrayPath, i, line.indexOf('[') + 1);
        } else {
          table = resolve(keys);
        }
        record(positions, table, i, line.indexOf('[') + 1);
        continue;
      }
    }

    // Walk the rest of the line: keys, the start of values, strings, brackets.
    let expectKey = stack.length === 0 || stack[stack.length - 1]?.kind === 'table';
    while (col < line.length && stack.length <= MAX_DEPTH) {
      const ch = line[col] as string;
      if (ch === ' ' || ch === '\t') {
        col++;
        continue;
      }
      if (ch === '#') break;
      const top = stack[stack.length - 1];
      if (expectKey && (top === undefined || top.kind === 'table') && ch !== '}') {
        const parsed = parseDottedKey(line.slice(col), true);
        if (!parsed) break;
        const base = top ? top.path : table;
        const path = [...base, ...parsed.keys];
        record(positions, path, i, col + 1);
        col += parsed.length;
        const eq = line.indexOf('=', col);
        if (eq < 0) break;
        col = eq + 1;
        expectKey = false;
        // The value decides whether a container opens.
        while (line[col] === ' ' || line[col] === '\t') col++;
        if (line[col] === '{') {
          stack.push({ kind: 'table', path });
          col++;
          expectKey = true;
        } else if (line[col] === '[') {
          stack.push({ kind: 'array', path, index: 0 });
          col++;
        }
        continue;
      }
      if (ch === '"' || ch === "'") {
        const triple = line.startsWith(ch.repeat(3), col);
        if (triple) {
          const end = line.indexOf(ch.repeat(3), col + 3);
          if (end < 0) {
            inMultiline = ch === '"' ? '"""' : "'''";
            break;
          }
          col = end + 3;
        } else {
          col = skipString(line, col);
        }
        continue;
      }
      if (ch === '{' && top?.kind === 'array') {
        stack.push({ kind: 'table', path: [...top.path, top.index] });
        expectKey = true;
      } else if (ch === '[' && top?.kind === 'array') {
        stack.push({ kind: 'array', path: [...top.path, top.index], index: 0 });
      } else if (ch === '}' || ch === ']') {
        stack.pop();
        expectKey = false;
      } else if (ch === ',') {
        if (top?.kind === 'array') top.index++;
        else if (top?.kind === 'table') expectKey = true;
      }
      col++;
    }
  }
  return positions;
}

/**
 * The position of `path`, or of its nearest ancestor that is written in the
 * source (a value inside an inline array is reported at its key).
 */
export function locate(positions: Map<string, Position>, path: ValuePath): Position | undefined {
  for (let n = path.length; n > 0; n--) {
    const hit = positions.get(pathKey(path.slice(0, n)));
    if (hit) return hit;
  }
  return undefined;
}

/** Turns a JSON-pointer path ("/rules/2/match") into segments, numbers for indices. */
export function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '' || pointer === '/') return [];
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** The reverse: segments to a JSON pointer ("/rules/2/match"). */
export function pathToPointer(path: ValuePath): string {
  return path.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

function pathKey(path: ValuePath): string {
  return JSON.stringify(path);
}

function record(positions: Map<string, Position>, path: ValuePath, lineIndex: number, column: number): void {
  const key = pathKey(path);
  if (!positions.has(key)) positions.set(key, { line: lineIndex + 1, column });
}

function skipString(line: string, start: number): number {
  const quote = line[start];
  let col = start + 1;
  while (col < line.length) {
    if (quote === '"' && line[col] === '\\') col += 2;
    else if (line[col] === quote) return col + 1;
    else col++;
  }
  return col;
}

/** Parses `a."b c".d` (optionally followed by `=`); returns the keys and the length consumed. */
function parseDottedKey(text: string, beforeEquals = false): { keys: string[]; length: number } | undefined {
  const keys: string[] = [];
  let col = 0;
  for (;;) {
    while (text[col] === ' ' || text[col] === '\t') col++;
    const ch = text[col];
    if (ch === '"' || ch === "'") {
      const end = skipString(text, col);
      const raw = text.slice(col, end);
      try {
        keys.push(ch === '"' ? (JSON.parse(raw) as string) : raw.slice(1, -1));
      } catch {
        keys.push(raw.slice(1, -1));
      }
      col = end;
    } else {
      const m = BARE_KEY.exec(text.slice(col));
      if (!m) return undefined;
      keys.push(m[0]);
      col += m[0].length;
    }
    while (text[col] === ' ' || text[col] === '\t') col++;
    if (text[col] === '.') {
      col++;
      continue;
    }
    if (beforeEquals && text[col] !== '=') return undefined;
    return { keys, length: col };
  }
}

/** A locator of keys in a TOML text: positions are found once, on the first question. */
export function tomlLocator(source: string): (path: ValuePath) => Position | undefined {
  let positions: Map<string, Position> | undefined;
  return (path) => locate((positions ??= keyPositions(source)), path);
}
