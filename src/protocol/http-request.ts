import { request as plainRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestOptions } from 'node:http';

/**
 * One HTTP request from a sidecar to its neighbour (the health check, the
 * reload URL), over node:http. Not fetch: fetch loads undici, about 16 MB more
 * resident memory in every sidecar than node:http (a GET of the same URL in a
 * bare node: 11 to 19 MB on Node 20, 16 MB on Node 24), for a GET
 * and a POST. Like `fetch(url, { redirect: 'manual' })`: a redirect is an
 * answer, never followed. Errors are the operating system's own
 * (`connect ECONNREFUSED 127.0.0.1:8081`), not `fetch failed`. (In the
 * bundles, node:http is required, not imported: an ES module import of it
 * loads undici all the same on Node 22 and later; see scripts/bundle.mjs.)
 */
export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as text, when it was read (`readBody`) and not longer than `maxBody` bytes. */
  body?: string;
}

export interface HttpRequestOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Whether to read the body, given the status and headers (default: not read). */
  readBody?: (status: number, headers: IncomingHttpHeaders) => boolean;
  /** A body longer than this is not read on (default 64 KiB). */
  maxBody?: number;
}

export async function httpRequest(href: string, options: HttpRequestOptions = {}): Promise<HttpAnswer> {
  const url = new URL(href);
  // As fetch: credentials in a URL are never sent (node:http would send them as Basic auth).
  if (url.username !== '' || url.password !== '') throw new TypeError(`${href} carries credentials, which are never sent; give a URL without them`);
  // TLS is loaded only for an https:// URL.
  const request = url.protocol === 'https:' ? (await import('node:https')).request : plainRequest;
  const { signal, maxBody = 64 * 1024 } = options;
  signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const requestOptions: RequestOptions = { method: options.method ?? 'GET', headers: { ...options.headers, ...(options.method === 'POST' ? { 'content-length': '0' } : {}) } };
    if (signal) requestOptions.signal = signal;
    const req = request(url, requestOptions, (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      const answer: HttpAnswer = { status, headers: res.headers };
      if (!options.readBody?.(status, res.headers)) {
        res.resume();
        res.once('end', () => resolve(answer));
        res.once('error', () => resolve(answer));
        return;
      }
      const chunks: Buffer[] = [];
      let length = 0;
      res.on('data', (chunk: Buffer) => {
        length += chunk.byteLength;
        if (length > maxBody) {
          // Too long to be what was asked for: not read on.
          res.destroy();
          resolve(answer);
          return;
        }
        chunks.push(chunk);
      });
      res.once('end', () => resolve({ ...answer, body: Buffer.concat(chunks).toString('utf8') }));
      res.once('error', reject);
    });
    req.once('error', (err) => reject(signal?.aborted ? signal.reason : err));
    req.end();
  });
}
