/**
 * The live status page: one HTML document and its script, served by the
 * daemon as they are (no build step at run time), fetching nothing from
 * outside: the bus network has no internet, and the Content-Security-Policy
 * sent with them forbids it anyway. The page listens to /events (server-sent
 * events) and renders with textContent only, so names heard on the network
 * can never become markup.
 */

export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'";

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nachos-sentinel</title>
<style>
  :root { --bg: #0f1419; --panel: #161c23; --line: #26303b; --text: #d6dde4; --muted: #8a97a5;
          --ok: #3fb950; --warn: #d29922; --bad: #f85149; --unk: #8a97a5; --accent: #58a6ff; }
  * { box-sizing: border-box; }
  body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
  header { display: flex; align-items: center; gap: 16px; padding: 16px 24px; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 18px; margin: 0; font-weight: 600; }
  header .reason { color: var(--muted); }
  header .live { margin-left: auto; color: var(--muted); font-size: 12px; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; padding: 16px 24px; }
  section { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; min-width: 0; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 10px; font-weight: 600; }
  table { width: 100%; border-collapse: collapse; }
  th { text-align: left; color: var(--muted); font-weight: 500; font-size: 12px; padding: 4px 8px; border-bottom: 1px solid var(--line); }
  td { padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  tr:last-child td { border-bottom: none; }
  code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
  .badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  .healthy { background: rgba(63,185,80,.15); color: var(--ok); }
  .degraded, .suspect { background: rgba(210,153,34,.15); color: var(--warn); }
  .unhealthy, .missing, .stale, .gone { background: rgba(248,81,73,.15); color: var(--bad); }
  .unknown { background: rgba(138,151,165,.15); color: var(--unk); }
  .big { font-size: 15px; padding: 4px 14px; }
  .muted { color: var(--muted); }
  .chips { display: flex; flex-wrap: wrap; gap: 6px; }
  .chip { border: 1px solid var(--line); border-radius: 6px; padding: 3px 8px; display: inline-flex; gap: 6px; align-items: baseline; }
  .dot { width: 8px; height: 8px; border-radius: 50%; display: inline-block; }
  .dot.healthy { background: var(--ok); } .dot.degraded, .dot.suspect { background: var(--warn); }
  .dot.unhealthy, .dot.stale { background: var(--bad); } .dot.unknown { background: var(--unk); }
  .errors li, .warnings li { margin-bottom: 4px; }
  .warnings { color: #8a6d00; }
  .empty { color: var(--muted); font-style: italic; }
  .kv { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
</style>
</head>
<body>
<header>
  <h1>nachos</h1>
  <span id="overall" class="badge big unknown">loading</span>
  <span id="reason" class="reason"></span>
  <span id="live" class="live">connecting…</span>
</header>
<main>
  <section id="policy"><h2>Policy</h2><div class="empty">no snapshot yet</div></section>
  <section id="rejection"><h2>Last rejected set</h2><div class="empty">none</div></section>
  <section id="components" class="wide"><h2>Components</h2><div class="empty">nothing heard yet</div></section>
  <section id="transitions" class="wide"><h2>Recent transitions</h2><div class="empty">none yet</div></section>
</main>
<script src="/app.js"></script>
</body>
</html>
`;

export const STATUS_PAGE_SCRIPT = `'use strict';
(function () {
  let doc = null;
  let receivedAt = 0;

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') el.className = v; else el.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const badge = (status, extra) => h('span', { class: 'badge ' + status + (extra ? ' ' + extra : '') }, status);
  const short = (rev) => (rev ? rev.slice(0, 12) : 'none');
  const count = (n, one) => n + ' ' + one + (n === 1 ? '' : 's');
  function ago(ms) {
    if (ms < 1000) return Math.round(ms) + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
    if (ms < 3600000) return Math.floor(ms / 60000) + ' min ' + Math.round((ms % 60000) / 1000) + ' s';
    return Math.floor(ms / 3600000) + ' h';
  }
  function section(id, title, body) {
    const el = document.getElementById(id);
    el.replaceChildren(h('h2', {}, title), body);
  }

  function render() {
    if (!doc) return;
    const health = doc.health;
    const since = Date.now() - receivedAt;
    const overall = document.getElementById('overall');
    overall.className = 'badge big ' + health.status;
    overall.textContent = health.status;
    document.getElementById('reason').textContent = health.reason;
    document.title = 'nachos: ' + health.status;

    const p = doc.policy.inForce;
    const conv = health.policy;
    section('policy', 'Policy', p ? h('div', {},
      h('div', { class: 'kv' },
        h('span', { class: 'muted' }, 'revision'), h('code', { title: p.revision, id: 'revision' }, short(p.revision)),
        h('span', { class: 'muted' }, 'files, rules'), h('span', {}, count(p.files, 'file') + ', ' + count(p.rules, 'rule')),
        h('span', { class: 'muted' }, 'in force since'), h('span', {}, p.since || '-'),
        h('span', { class: 'muted' }, 'convergence'), h('span', { id: 'convergence' }, conv.summary),
        doc.rollout ? h('span', { class: 'muted' }, 'rollout') : null,
        doc.rollout ? h('span', { id: 'rollout' }, doc.rollout.summary) : null,
        conv.lastConvergence ? h('span', { class: 'muted' }, 'last took') : null,
        conv.lastConvergence ? h('span', {}, ago(conv.lastConvergence.tookMs)) : null),
      p.warnings.length ? h('ul', { class: 'warnings', id: 'policy-warnings' }, p.warnings.map((e) =>
        h('li', {}, h('code', {}, e.file + (e.line ? ':' + e.line + (e.column ? ':' + e.column : '') : '')), ' warning: ', e.message)),
        p.warningsLeftOut ? h('li', { class: 'muted' }, 'and ' + p.warningsLeftOut + ' more (nachos-sentinel validate lists them all)') : null) : null,
      conv.behind.length ? h('table', { id: 'behind' },
        h('tr', {}, h('th', {}, 'behind'), h('th', {}, 'runs'), h('th', {}, 'for')),
        conv.behind.map((b) => h('tr', {}, h('td', { class: 'mono' }, b.component + '/' + b.instance),
          h('td', { class: 'mono' }, short(b.revision)), h('td', {}, ago(b.behindForMs + since))))) : null)
      : h('div', { class: 'empty' }, 'no valid snapshot yet'));

    const r = doc.policy.lastRejection;
    section('rejection', 'Last rejected set', r ? h('div', {},
      h('div', { class: 'kv' },
        h('span', { class: 'muted' }, 'revision'), h('code', { title: r.revision }, short(r.revision)),
        h('span', { class: 'muted' }, 'at'), h('span', {}, r.at),
        h('span', { class: 'muted' }, 'on disk now'), h('span', {}, r.stillOnDisk ? 'yes: fix it to recover' : 'no: fixed since')),
      h('ul', { class: 'errors', id: 'rejection-errors' }, r.problems.map((e) =>
        h('li', {}, h('code', {}, e.file + (e.line ? ':' + e.line + (e.column ? ':' + e.column : '') : '')), ' ', e.message,
          e.ruleId ? h('span', { class: 'muted' }, ' (rule ' + e.ruleId + ')') : null))))
      : h('div', { class: 'empty' }, 'none'));

    section('components', 'Components', health.components.length ? h('table', { id: 'component-table' },
      h('tr', {}, h('th', {}, 'component'), h('th', {}, 'role'), h('th', {}, 'status'), h('th', {}, 'why'), h('th', {}, 'instances')),
      health.components.map((c) => h('tr', { 'data-component': c.name },
        h('td', { class: 'mono' }, c.name), h('td', { class: 'muted' }, c.role), h('td', {}, badge(c.status)),
        h('td', { class: 'muted why' }, c.reason || ''),
        h('td', {}, c.instances.length ? h('div', { class: 'chips' }, c.instances.map((i) =>
          h('span', { class: 'chip', 'data-instance': i.instance, title: 'policy ' + short(i.policyRevision) },
            h('span', { class: 'dot ' + i.status }), h('span', { class: 'mono' }, i.instance),
            h('span', { class: 'status' }, i.status), h('span', { class: 'muted' }, ago(i.lastSeenAgoMs + since) + ' ago')))) : h('span', { class: 'empty' }, 'none')))))
      : h('div', { class: 'empty' }, 'nothing heard yet'));

    section('transitions', 'Recent transitions', doc.transitions.length ? h('table', {},
      h('tr', {}, h('th', {}, 'detected'), h('th', {}, 'what'), h('th', {}, 'change'), h('th', {}, 'why')),
      doc.transitions.map((t) => h('tr', {},
        h('td', { class: 'muted mono' }, t.detectedAt.slice(11, 23)),
        h('td', { class: 'mono' }, t.scope === 'overall' ? 'overall' : t.component + (t.instance ? '/' + t.instance : '')),
        h('td', {}, t.from ? badge(t.from) : h('span', { class: 'muted' }, 'new'), ' → ', badge(t.to)),
        h('td', { class: 'muted' }, t.why || t.reason))))
      : h('div', { class: 'empty' }, 'none yet'));

    const s = doc.sentinel;
    document.getElementById('live').textContent = (s.connected ? 'live' : 'sentinel cut off from the bus') +
      ' · ' + s.component + '/' + s.instance + ' · v' + s.version;
  }

  function connect() {
    const source = new EventSource('/events');
    source.onmessage = (event) => { doc = JSON.parse(event.data); receivedAt = Date.now(); render(); };
    source.onerror = () => { document.getElementById('live').textContent = 'reconnecting to the sentinel…'; };
  }
  connect();
  setInterval(render, 500);
})();
`;
