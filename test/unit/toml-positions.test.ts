import { describe, expect, it } from 'vitest';
import { keyPositions, locate, pointerToPath } from '../../src/text/toml-positions.js';

const source = `# comment [not a header]
version = "1.0"
description = """
[[rules]] inside a string
"""

[metadata]
mode = "strict" # trailing comment

[[rules]]
id = "first"
match = { resource = "tool", action = ["read", "call"] }
conditions = [
  { field = "a", operator = "in", value = ["x", "y"] },
  { field = "b", operator = "equals", value = "{[" },
]

[[rules]]
id = "second"
"quoted key" = 1
a.b = 2

[rules.match]
resource = "dm"

[[rules.conditions]]
field = "c"
`;

describe('keyPositions', () => {
  const positions = keyPositions(source);
  const at = (pointer: string) => locate(positions, pointerToPath(pointer));

  it.each([
    ['/version', 2, 1],
    ['/metadata', 7, 1],
    ['/metadata/mode', 8, 1],
    ['/rules/0', 10, 1],
    ['/rules/0/id', 11, 1],
    ['/rules/0/match/resource', 12, 11],
    ['/rules/0/match/action', 12, 30],
    ['/rules/0/conditions/0/operator', 14, 18],
    ['/rules/0/conditions/1/value', 15, 39],
    ['/rules/1/id', 19, 1],
    ['/rules/1/quoted key', 20, 1],
    ['/rules/1/a/b', 21, 1],
    ['/rules/1/match/resource', 24, 1],
    ['/rules/1/conditions/0/field', 27, 1],
  ])('finds %s at %d:%d', (pointer, line, column) => {
    expect(at(pointer)).toEqual({ line, column });
  });

  it('falls back to the nearest written ancestor', () => {
    expect(at('/rules/0/conditions/0/value/1')).toEqual({ line: 14, column: 35 });
    expect(at('/nothing')).toBeUndefined();
  });

  it('never throws on odd input', () => {
    for (const text of ['[', '[[', 'a = "unterminated', 'x = [\n{', '"""', '= 1', 'a.', '\u0000']) {
      expect(() => keyPositions(text)).not.toThrow();
    }
  });
});
