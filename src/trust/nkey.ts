/**
 * The NKey text encoding (what `nsc`, `nk` and the NATS server use), read and
 * written without a cryptography library: base32 (RFC 4648, no padding) of a
 * prefix, the 32-byte Ed25519 key or seed, and a CRC-16/XMODEM checksum,
 * little-endian. Public keys carry one prefix byte (`A` account, `U` user,
 * `O` operator, `N` server, `C` cluster); seeds two (`S` and the role), so a
 * seed starts `SA`, `SU`, `SO`, `SN` or `SC`.
 * https://github.com/nats-io/nkeys/blob/main/strkey.go
 */

/** The roles whose keys sign (curve keys, `X`, encrypt and are refused here). */
export const KEY_ROLES = { A: 0 << 3, U: 20 << 3, O: 14 << 3, N: 13 << 3, C: 2 << 3 } as const;
export type KeyRole = keyof typeof KEY_ROLES;
const SEED_PREFIX = 18 << 3;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** An NKey public key's parts: its role and the raw 32-byte Ed25519 public key. */
export interface DecodedKey {
  role: KeyRole;
  raw: Uint8Array;
}

/** `A...` or `U...` (56 characters): the role and the raw key, or undefined when it is not one (checksum included). */
export function decodePublicKey(text: string): DecodedKey | undefined {
  if (typeof text !== 'string' || text.length !== 56) return undefined;
  const bytes = unframe(text, 35);
  if (!bytes) return undefined;
  const role = roleOf(bytes[0] as number);
  return role === undefined ? undefined : { role, raw: bytes.subarray(1) };
}

/** `SA...` (58 characters): the role and the raw 32-byte seed, or undefined when it is not one. */
export function decodeSeed(text: string): DecodedKey | undefined {
  if (typeof text !== 'string' || text.length !== 58) return undefined;
  const bytes = unframe(text, 36);
  if (!bytes) return undefined;
  const b0 = bytes[0] as number;
  const b1 = bytes[1] as number;
  if ((b0 & 0xf8) !== SEED_PREFIX) return undefined;
  const role = roleOf(((b0 & 0x07) << 5) | ((b1 & 0xf8) >> 3));
  return role === undefined ? undefined : { role, raw: bytes.subarray(2) };
}

/** The public NKey of a role and a raw 32-byte Ed25519 public key. */
export function encodePublicKey(role: KeyRole, raw: Uint8Array): string {
  const body = new Uint8Array(33);
  body[0] = KEY_ROLES[role];
  body.set(raw, 1);
  return frame(body);
}

/** The NKey seed of a role and a raw 32-byte Ed25519 seed (what `nk -gen account` writes). */
export function encodeSeed(role: KeyRole, raw: Uint8Array): string {
  const prefix = KEY_ROLES[role];
  const body = new Uint8Array(34);
  body[0] = SEED_PREFIX | (prefix >> 5);
  body[1] = (prefix & 31) << 3;
  body.set(raw, 2);
  return frame(body);
}

/** Whether `text` is a public NKey that can check signatures. */
export function isPublicKey(text: string): boolean {
  return decodePublicKey(text) !== undefined;
}

/** Whether `text` is an NKey seed (a secret): used to name one given where a public key belongs, never to print it. */
export function isSeed(text: string): boolean {
  return decodeSeed(text.trim()) !== undefined;
}

function roleOf(prefix: number): KeyRole | undefined {
  for (const [role, value] of Object.entries(KEY_ROLES)) if (value === prefix) return role as KeyRole;
  return undefined;
}

/** Base32 of `body` and its checksum. */
function frame(body: Uint8Array): string {
  const crc = crc16(body);
  const all = new Uint8Array(body.length + 2);
  all.set(body);
  all[body.length] = crc & 0xff;
  all[body.length + 1] = crc >> 8;
  return base32(all);
}

/** The body of a framed key of `length` bytes (checksum included) when the checksum holds. */
function unframe(text: string, length: number): Uint8Array | undefined {
  const bytes = unbase32(text);
  if (!bytes || bytes.length !== length) return undefined;
  const body = bytes.subarray(0, length - 2);
  const crc = (bytes[length - 2] as number) | ((bytes[length - 1] as number) << 8);
  return crc16(body) === crc ? body : undefined;
}

function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

function unbase32(text: string): Uint8Array | undefined {
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let bits = 0;
  let value = 0;
  let n = 0;
  for (const ch of text) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) return undefined;
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[n++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  // The spare bits of the last character must be zero: one key, one spelling.
  if ((value & ((1 << bits) - 1)) !== 0) return undefined;
  return out;
}

/** CRC-16/XMODEM (polynomial 0x1021, initial 0), as the NKey checksum. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}
