// Rewrites each bundle given with every character outside ASCII as a \uXXXX escape (a few comments and one
// regular expression from dependencies hold some). V8 keeps a script's source in memory, as one byte per
// character only when every character fits: one em dash doubled the daemon's 1.7 MB source in its heap.
// An escape means the same in a string, a regular expression, an identifier and a comment.
import { readFileSync, writeFileSync } from 'node:fs';

for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, 'utf8');
  const ascii = text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (ascii !== text) writeFileSync(file, ascii);
}
