import { Type, type Static } from '@sinclair/typebox';
import { hasUserInfo, shownUrl } from '../text/shown-url.js';

/**
 * Checks of the container the sentinel sits beside, as written in the config
 * file (`[[health.checks]]`). Pure: the schema and its parsed form; the
 * runner in checks.ts does the I/O.
 */

/** Names the sentinel (daemon or sidecar) uses for its own checks; configured checks cannot take them. */
export const OWN_CHECKS = ['bus', 'policy', 'policy_files', 'announce', 'event_loop', 'policy_delivery', 'policy_reload'] as const;
/** A heartbeat carries at most this many of the sentinel's own checks (the daemon's five; a sidecar has two). */
export const OWN_CHECK_SLOTS = 5;

export const DEFAULT_CHECK_TIMEOUT = 2000; // 2 s

const Common = {
  name: Type.String({ pattern: '^[a-z0-9_-]{1,48}$', description: 'Shown in the heartbeat `checks`.' }),
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
 * `--check URL` as a check: `http://` and `https://` URLs are HTTP checks
 * (expecting 200, or a Nachos HealthCheck body at any status), `tcp://host:port`
 * a TCP check. Each is named after its host (`gateway`), then its port when two
 * share a host; all are required. Throws a TypeError naming a URL it cannot use.
 */
export function checksFromUrls(urls: readonly string[]): CheckSpec[] {
  const specs: CheckSpec[] = [];
  const named = new Set<string>();
  for (const text of urls) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new TypeError(`"${text.slice(0, 40)}" is not a URL; write http://host:port/path, https://... or tcp://host:port`);
    }
    // fetch never sends credentials written in a URL; and this one would be shown wherever the check is.
    if (hasUserInfo(text)) throw new TypeError(`${shownUrl(text)} carries a user name or password, which an HTTP check never sends; check a URL that needs none`);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const base = host.toLowerCase().replace(/[^a-z0-9_-]+/g, '_').slice(0, 40) || 'check';
    let name = named.has(base) ? `${base}-${url.port || url.protocol.replace(':', '')}` : base;
    for (let i = 2; named.has(name); i++) name = `${base}-${i}`;
    named.add(name);
    const common = { name, required: true, timeoutMs: DEFAULT_CHECK_TIMEOUT };
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
