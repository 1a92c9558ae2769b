import { Type, type Static } from '@sinclair/typebox';
import { hasUserInfo, shownUrl } from '../text/shown-url.js';

/**
 * Checks of the container the sentinel sits beside, as written in the config
 * file (`[[health.checks]]`). Pure: the schema and its parsed form; the
 * runner in checks.ts does the I/O.
 */

/** Where a sidecar's heartbeat, which carries its neighbour's version and uptime, keeps its own (in `details`). */
export const SIDECAR_DETAIL = 'sidecar';
/**
 * Names the sentinel (daemon or sidecar) uses in its heartbeat for its own
 * checks and facts; configured checks cannot take them.
 */
export const OWN_CHECKS = ['bus', 'policy', 'policy_files', 'announce', 'event_loop', 'policy_delivery', 'policy_reload', SIDECAR_DETAIL] as const;
/** A heartbeat carries at most this many of the sentinel's own checks (the daemon's five; a sidecar has two). */
export const OWN_CHECK_SLOTS = 5;

export const DEFAULT_CHECK_TIMEOUT = 2000; // 2 s

/** What a check may be named: it is a key of the heartbeat's `checks`. */
const CHECK_NAME = /^[a-z0-9_-]{1,48}$/;
/**
 * The name of a `--check URL` given without one, until nameChecks names it
 * after the component (which the sidecar knows, the parser of `--check` not).
 * Never a valid name, so a check left unnamed cannot pass for a named one.
 */
export const UNNAMED = '';

const Common = {
  name: Type.String({ pattern: CHECK_NAME.source, description: 'Shown in the heartbeat `checks`.' }),
  required: Type.Optional(Type.Boolean({ description: 'A failing required check makes the status unhealthy, an optional one degraded (default true).' })),
  timeout: Type.Optional(Type.String({ description: 'Cut the check off after this long (default 2s).' })),
};

export const CheckSpecSchema = Type.Union(
  [
    Type.Object(
      {
        ...Common,
        type: Type.Literal('http'),
        url: Type.String({ pattern: '^https?://', description: 'GET this URL.' }),
        expect_status: Type.Optional(Type.Integer({ minimum: 100, maximum: 599, description: 'Expected status (default 200).' })),
      },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        ...Common,
        type: Type.Literal('tcp'),
        address: Type.String({ pattern: '^.+:\\d{1,5}$', description: 'host:port that must accept a connection.' }),
      },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        ...Common,
        type: Type.Literal('command'),
        command: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String(), { minItems: 1 })], {
          description: 'An argv array (run directly) or a string (run by /bin/sh -c).',
        }),
        expect_exit: Type.Optional(Type.Integer({ minimum: 0, maximum: 255, description: 'Expected exit code (default 0).' })),
      },
      { additionalProperties: false },
    ),
  ],
  { errorMessage: 'must be a check table with type "http" (url), "tcp" (address) or "command" (command)' },
);

export type CheckSpecInput = Static<typeof CheckSpecSchema>;

/** A check, resolved: defaults filled, durations in milliseconds. */
export type CheckSpec =
  | { name: string; required: boolean; timeoutMs: number; type: 'http'; url: string; expectStatus: number }
  | { name: string; required: boolean; timeoutMs: number; type: 'tcp'; host: string; port: number }
  | { name: string; required: boolean; timeoutMs: number; type: 'command'; argv: string[]; expectExit: number };

/**
 * `--check [NAME=]URL` as a check: `http://` and `https://` URLs are HTTP
 * checks (expecting 200, or a Nachos HealthCheck body at any status),
 * `tcp://host:port` a TCP check; all are required. NAME, when given, names it
 * (`gw=http://gateway:8081/health`); one given without is UNNAMED until
 * nameChecks names it after the component. Throws a TypeError naming a name or
 * a URL it cannot use (the URL as shownUrl shows it).
 */
export function checksFromUrls(entries: readonly string[]): CheckSpec[] {
  const specs: CheckSpec[] = [];
  const named = new Set<string>();
  for (const entry of entries) {
    const { name, text } = splitName(entry);
    if (name !== undefined) {
      if (!CHECK_NAME.test(name)) {
        throw new TypeError(`${JSON.stringify(name.slice(0, 48))} is not a check name: write 1 to 48 of a-z, 0-9, _ and - (--check NAME=URL)`);
      }
      if ((OWN_CHECKS as readonly string[]).includes(name)) throw new TypeError(`the check name "${name}" is the sentinel's own; choose another`);
      if (named.has(name)) throw new TypeError(`two checks are named "${name}"; names must be unique`);
      named.add(name);
    }
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new TypeError(`"${text.slice(0, 40)}" is not a URL; write http://host:port/path, https://... or tcp://host:port`);
    }
    // fetch never sends credentials written in a URL; and this one would be shown wherever the check is.
    if (hasUserInfo(text)) throw new TypeError(`${shownUrl(text)} carries a user name or password, which an HTTP check never sends; check a URL that needs none`);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const common = { name: name ?? UNNAMED, required: true, timeoutMs: DEFAULT_CHECK_TIMEOUT };
    if (url.protocol === 'http:' || url.protocol === 'https:') {
      specs.push({ ...common, type: 'http', url: url.href, expectStatus: 200 });
    } else if (url.protocol === 'tcp:') {
      const port = Number(url.port);
      if (!host || !url.port || port < 1 || port > 65535) throw new TypeError(`${shownUrl(text)}: a TCP check needs tcp://host:port`);
      specs.push({ ...common, type: 'tcp', host, port });
    } else {
      throw new TypeError(`${shownUrl(text)}: unsupported scheme "${url.protocol}//"; use http://, https:// or tcp://`);
    }
  }
  return specs;
}

/**
 * `NAME=URL` -> its parts; a plain URL has no name. What comes before the
 * first `=` is a name only when it holds no `:` or `/`: the `=` of a query
 * (`http://gw/health?x=1`) follows both.
 */
function splitName(entry: string): { name: string | undefined; text: string } {
  const match = /^([^:/=]*)=(.*)$/s.exec(entry);
  return match ? { name: (match[1] as string).trim(), text: (match[2] as string).trim() } : { name: undefined, text: entry.trim() };
}

/**
 * Names the UNNAMED checks after the component they check (`gateway`), the
 * second and later `gateway-2`, `gateway-3`, passing over the names taken by
 * named checks and the sentinel's own. The component's name is made a check
 * name first (lowercase; other characters `_`). The others are returned as
 * they are.
 */
export function nameChecks(specs: readonly CheckSpec[], component: string): CheckSpec[] {
  const taken = new Set<string>([...OWN_CHECKS, ...specs.map((s) => s.name).filter((n) => n !== UNNAMED)]);
  // 44 characters leave room for `-NNN` within the 48 of a name.
  const base = component.toLowerCase().replace(/[^a-z0-9_-]+/g, '_').slice(0, 44) || 'check';
  let n = 1;
  return specs.map((spec) => {
    if (spec.name !== UNNAMED) return spec;
    let name = n === 1 ? base : `${base}-${n}`;
    while (taken.has(name)) name = `${base}-${++n}`;
    n++;
    taken.add(name);
    return { ...spec, name };
  });
}
