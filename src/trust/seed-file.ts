import { readFileSync, statSync } from 'node:fs';
import { ConfigError, messageOf } from '../errors.js';
import { SigningKey } from './ed25519.js';

/** A signing key read from a seed file, and what the file's mode is worth saying. */
export interface LoadedKey {
  key: SigningKey;
  /** Set when others in the file's group may read it: worth a warning, not a refusal (Kubernetes' fsGroup does that). */
  warning?: string;
}

/**
 * Reads an NKey seed file for signing (`what` names the setting in errors).
 * A file anyone on the machine may read is refused, as ssh refuses such a
 * key: the seed is the whole of the trust. Neither the seed nor any part of
 * the file is ever put in a message.
 */
export function loadSeedFile(file: string, what: string): LoadedKey {
  let mode: number;
  let text: string;
  try {
    mode = statSync(file).mode & 0o777;
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${what} ${file}`, `cannot be read: ${messageOf(err)}`);
  }
  if (mode & 0o004) {
    throw new ConfigError(
      `${what} ${file}`,
      `is readable by every user of this machine (mode ${octal(mode)}); the seed is a secret: chmod 600 ${file} (in Kubernetes, mount the secret with defaultMode: 0400)`,
    );
  }
  let key: SigningKey;
  try {
    key = new SigningKey(text);
  } catch (err) {
    throw new ConfigError(`${what} ${file}`, messageOf(err));
  }
  return mode & 0o040 ? { key, warning: `${what} ${file} is readable by its group (mode ${octal(mode)}); chmod 600 unless the group is meant to read it` } : { key };
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}
