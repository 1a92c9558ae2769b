/**
 * A URL as it may be shown (a log line, a heartbeat, a status page): a user
 * name and password replaced by `***`, and every query value too (`?token=`
 * is how many services take a secret). The path and the host stay: they say
 * where, not who. Text that is not a URL is shown as `<not a URL>`.
 */
export function shownUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return '<not a URL>';
  }
  if (url.username !== '' || url.password !== '') {
    url.username = '***';
    url.password = '';
  }
  const shown = [...url.searchParams.keys()].map((key) => `${encodeURIComponent(key)}=***`);
  url.search = '';
  url.hash = '';
  return `${url.href}${shown.length > 0 ? `?${shown.join('&')}` : ''}`;
}

/** Whether a URL carries a user name or password (which fetch refuses to send). */
export function hasUserInfo(text: string): boolean {
  try {
    const url = new URL(text);
    return url.username !== '' || url.password !== '';
  } catch {
    return false;
  }
}
