/**
 * Text from the network made safe to print on a terminal: a heartbeat's
 * policy revision or a forged sentinel's reply could carry escape sequences
 * (clear the screen, move the cursor, retitle the window, ring the bell). Every
 * control character, C0, DEL and C1, is shown as `\uXXXX` instead of sent.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** JSON for a terminal: JSON.stringify escapes C0 itself; DEL and C1 pass through it raw. */
export function printableJson(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
