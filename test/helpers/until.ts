/**
 * Polls `condition` until it holds (returns a truthy value), or fails after
 * `timeoutMs` saying what was awaited. Tests wait with this, never a bare sleep.
 */
export async function until<T>(
  condition: () => T | Promise<T>,
  timeoutMs = 5000,
  what = 'condition',
  intervalMs = 10,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Lets time pass where a test must show that something does NOT happen. */
export function quietFor(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
