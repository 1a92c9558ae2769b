import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The repository's root. */
export const ROOT = path.resolve(import.meta.dirname, '../..');

/** The documentation, page by page: the README (the front door) and every page under docs/. */
export const DOC_PAGES: string[] = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

/** One page's text. */
export function doc(page: string): string {
  return readFileSync(path.join(ROOT, page), 'utf8');
}

/** Every page, joined: where "is this documented?" is asked. */
export function allDocs(): string {
  return DOC_PAGES.map(doc).join('\n');
}

/** The code blocks of `lang` in `text`. */
export function blocksOf(text: string, lang: string): string[] {
  return [...text.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1] ?? '');
}
