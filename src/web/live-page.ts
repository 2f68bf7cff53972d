/**
 * The live page served at `GET /`: no data of its own and nothing from the internet. It asks
 * for an admin token, then follows `/v0/sessions/events` (server-sent events) and draws the
 * session statechart (`/v0/diagram/session.svg`, generated from the machine) with the selected
 * session's active states highlighted. Each session's RTT and throughput over the last minutes
 * are drawn as inline SVG sparklines from samples the page keeps itself, one per update.
 */
export const LIVE_PAGE_HTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>autoprox — live sessions</title>
<style>
  :root { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d2333; background: #f6f7fb; }
  body { margin: 0; }
  header { background: #27335c; color: #fff; padding: 10px 18px; display: flex; align-items: center; gap: 16px; }
  header h1 { font-size: 17px; margin: 0; font-weight: 600; }
  #link { font-size: 12px; padding: 2px 8px; border-radius: 9px; background: #555e80; }
  #link.live { background: #2f8f4e; }
  main { padding: 14px 18px; display: grid; grid-template-columns: minmax(0, 1.25fr) minmax(0, 1fr); gap: 16px; }
  @media (max-width: 1100px) { main { grid-template-columns: minmax(0, 1fr); } }
  section { background: #fff; border: 1px solid #dde1ee; border-radius: 8px; padding: 12px; overflow: auto; min-width: 0; }
  .table-wrap { overflow-x: auto; max-width: 100%; }
  h2 { font-size: 14px; margin: 0 0 8px; color: #27335c; }
  form { display: flex; gap: 8px; }
  input { flex: 1; font: inherit; padding: 6px 8px; border: 1px solid #b9c0d8; border-radius: 5px; }
  button { font: inherit; padding: 6px 12px; border: 0; border-radius: 5px; background: #3c55b5; color: #fff; cursor: pointer; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; }
  th, td { text-align: left; padding: 5px 6px; border-bottom: 1px solid #eef0f6; white-space: nowrap; vertical-align: middle; }
  td.peer { white-space: normal; word-break: break-all; min-width: 9em; }
  td.msg { white-space: normal; }
  svg.spark { display: block; overflow: visible; }
  svg.spark polyline { fill: none; stroke-width: 1.5; }
  svg.spark[data-kind="rtt"] polyline { stroke: #3c55b5; }
  svg.spark[data-kind="throughput"] polyline { stroke: #2f8f4e; }
  td.charts > div { display: flex; gap: 6px; }
  tbody tr { cursor: pointer; }
  tbody tr:hover { background: #f2f4fb; }
  tbody tr.selected { background: #e3e8fa; }
  .status { font-weight: 600; font-size: 12px; padding: 1px 6px; border-radius: 4px; }
  .CONNECTED { background: #e7e7ef; } .UDP_WAITING { background: #fff1c2; } .UDP_ESTABLISHED { background: #cdeed7; } .CLOSED { background: #f6d3d3; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 3px 12px; font-size: 13px; margin: 0 0 10px; }
  dt { color: #5b6384; } dd { margin: 0; font-variant-numeric: tabular-nums; word-break: break-all; }
  dd .spark { margin-top: 2px; }
  #diagram svg { width: 100%; height: auto; }
  #diagram g.active > path, #diagram g.active > ellipse, #diagram g.active a > path, #diagram g.active a > ellipse { fill: #ffd866 !important; stroke: #a06b00 !important; stroke-width: 2px; }
  .muted { color: #7a819c; font-size: 13px; }
  #error { color: #a42020; font-size: 13px; margin-top: 6px; }
</style>
</head>
<body>
<header><h1>autoprox — live sessions</h1><span id="link">not connected</span><span id="count" class="muted" style="color:#c8cdea"></span></header>
<main>
  <section>
    <h2>Admin token</h2>
    <form id="login"><input id="token" type="password" placeholder="a token with apx_admin: true" autocomplete="off"><button>Open</button></form>
    <div id="error"></div>
    <h2 style="margin-top:14px">Sessions</h2>
    <div class="table-wrap">
    <table>
      <thead><tr><th>session</th><th>state</th><th>family</th><th>peer</th><th>rtt ms</th><th>in / out</th><th title="RTT (blue) and throughput (green) over the last 5 minutes">last 5 min</th><th>age</th></tr></thead>
      <tbody id="sessions"><tr><td colspan="8" class="muted msg">give an admin token to see the sessions</td></tr></tbody>
    </table>
    </div>
  </section>
  <section>
    <h2>Session <span id="selected-id" class="muted">(select one)</span></h2>
    <dl id="details" data-state=""></dl>
    <div id="diagram" class="muted">loading the statechart…</div>
  </section>
</main>
<script>
(() => {
  const $ = (id) => document.getElementById(id);
  let sessions = [];
  let selected = null;
  let source = null;
  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  const bytes = (n) => n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB';
  /** Samples kept per session for its charts: one per update, over this window (ms). */
  const CHART_WINDOW_MS = 5 * 60 * 1000;
  const samples = new Map();
  const NOT_AUTHORISED_HINT = 'Get an admin token with: autoprox token --sub ops --admin --jwt-secret=S (S: the secret the server runs with), or open the live page URL that npm start prints.';

  /** Records a sample of each session (time, RTT, bytes both ways) and forgets ended sessions. */
  function sample(list, now) {
    const live = new Set();
    for (const s of list) {
      live.add(s.id);
      let h = samples.get(s.id);
      if (!h) { h = []; samples.set(s.id, h); }
      const last = h[h.length - 1];
      const total = s.bytesIn + s.bytesOut;
      // Bytes per second since the previous sample.
      const rate = last && now > last.t ? Math.max(0, (total - last.total) * 1000 / (now - last.t)) : null;
      h.push({ t: now, rtt: s.rttMs, total, rate });
      while (h.length && h[0].t < now - CHART_WINDOW_MS) h.shift();
    }
    for (const id of samples.keys()) if (!live.has(id)) samples.delete(id);
  }

  /** An inline SVG sparkline of the non-null values, 0 at the bottom, the largest at the top. */
  function spark(kind, values, width, height) {
    const points = [];
    const max = Math.max(0, ...values.filter((v) => v !== null));
    values.forEach((v, i) => {
      if (v === null) return;
      const x = values.length > 1 ? i * width / (values.length - 1) : 0;
      const y = max > 0 ? height - v * height / max : height;
      points.push(x.toFixed(1) + ',' + y.toFixed(1));
    });
    const label = kind === 'rtt' ? 'RTT, up to ' + max.toFixed(2) + ' ms' : 'throughput, up to ' + bytes(Math.round(max)) + '/s';
    return '<svg class="spark" data-kind="' + kind + '" width="' + width + '" height="' + height + '" viewBox="0 0 ' + width + ' ' + height + '" role="img" aria-label="' + label + '"><title>' + label + '</title>' +
      (points.length > 1 ? '<polyline points="' + points.join(' ') + '"></polyline>' : '') + '</svg>';
  }
  const charts = (id, width, height) => {
    const h = samples.get(id) ?? [];
    return [spark('rtt', h.map((x) => x.rtt), width, height), spark('throughput', h.map((x) => x.rate), width, height)];
  };

  function notAuthorised(message) {
    sessions = [];
    samples.clear();
    $('count').textContent = '';
    $('sessions').innerHTML = '<tr><td colspan="8" class="muted msg" id="not-authorised"><strong>not authorised</strong>: ' + esc(message) + '. ' + esc(NOT_AUTHORISED_HINT) + '</td></tr>';
  }
  const age = (ms) => ms < 60000 ? Math.round(ms / 1000) + ' s' : ms < 3600000 ? Math.round(ms / 60000) + ' min' : (ms / 3600000).toFixed(1) + ' h';

  fetch('/v0/diagram/session.svg').then((r) => r.ok ? r.text() : Promise.reject(r.status)).then((svg) => {
    $('diagram').innerHTML = svg;
    $('diagram').classList.remove('muted');
    highlight();
  }).catch(() => { $('diagram').textContent = 'the diagram is not available'; });

  function highlight() {
    const svg = $('diagram').querySelector('svg');
    if (!svg) return;
    const session = sessions.find((s) => s.id === selected);
    const active = new Set(session ? session.activeStates : []);
    for (const g of svg.querySelectorAll('g.node, g.cluster')) {
      const title = (g.querySelector(':scope > title')?.textContent ?? '').replace(/^cluster /, '');
      g.classList.toggle('active', active.has(title));
    }
  }

  function render() {
    $('count').textContent = sessions.length + ' live';
    const rows = sessions.map((s) => '<tr data-id="' + esc(s.id) + '"' + (s.id === selected ? ' class="selected"' : '') + '>' +
      '<td title="' + esc(s.id) + '">' + esc(s.id.slice(0, 8)) + '</td>' +
      '<td><span class="status ' + esc(s.status) + '">' + esc(s.state) + '</span></td>' +
      '<td>' + esc(s.family ?? '') + '</td><td class="peer">' + esc(s.peer ?? '') + '</td>' +
      '<td>' + (s.rttMs ?? '') + '</td><td>' + bytes(s.bytesIn) + ' / ' + bytes(s.bytesOut) + '</td>' +
      '<td class="charts"><div>' + charts(s.id, 48, 16).join('') + '</div></td><td>' + age(s.ageMs) + '</td></tr>');
    $('sessions').innerHTML = rows.join('') || '<tr><td colspan="8" class="muted msg">no live sessions</td></tr>';
    const s = sessions.find((x) => x.id === selected);
    $('selected-id').textContent = s ? s.id : selected ? '(ended)' : '(select one)';
    $('details').dataset.state = s ? s.state : '';
    $('details').innerHTML = s ? [
      ['state', '<span class="status ' + esc(s.status) + '">' + esc(s.state) + '</span>'], ['status', esc(s.status)],
      ['family', esc(s.family ?? '—')], ['peer', esc(s.peer ?? '—')], ['rtt', s.rttMs === null ? '—' : s.rttMs + ' ms'],
      ['subject', esc(s.subject)], ['client', esc(s.client)], ['candidates', esc(s.candidates.join(', ') || '—')],
      ['bytes in / out', bytes(s.bytesIn) + ' / ' + bytes(s.bytesOut)], ['messages in / out', s.messagesIn + ' / ' + s.messagesOut],
      ['datagrams in / out', s.datagramsIn + ' / ' + s.datagramsOut],
      ['drops', esc(Object.entries(s.drops).filter(([, n]) => n > 0).map(([k, n]) => k + ' ' + n).join(', ') || 'none')],
      ['established after', s.timeToEstablishedMs === null ? '—' : s.timeToEstablishedMs + ' ms'], ['age', age(s.ageMs)],
      ['rtt, last 5 min', charts(s.id, 220, 36)[0]], ['throughput, last 5 min', charts(s.id, 220, 36)[1]],
    ].map(([k, v]) => '<dt>' + k + '</dt><dd data-field="' + k + '">' + v + '</dd>').join('') : '';
    highlight();
  }

  $('sessions').addEventListener('click', (e) => {
    const row = e.target.closest('tr[data-id]');
    if (!row) return;
    selected = row.dataset.id;
    render();
  });

  function connect(token) {
    if (source) source.close();
    $('error').textContent = '';
    source = new EventSource('/v0/sessions/events?access_token=' + encodeURIComponent(token));
    source.addEventListener('sessions', (e) => {
      const data = JSON.parse(e.data);
      sessions = data.sessions;
      sample(sessions, Date.now());
      if (!selected && sessions.length) selected = sessions[0].id;
      render();
    });
    source.onopen = () => { $('link').textContent = 'live'; $('link').classList.add('live'); };
    source.onerror = () => {
      $('link').textContent = 'reconnecting'; $('link').classList.remove('live');
      fetch('/v0/sessions?access_token=' + encodeURIComponent(token)).then(async (r) => {
        if (r.status === 401 || r.status === 403) {
          source.close();
          $('link').textContent = 'not connected';
          const message = (await r.json()).error.message;
          $('error').textContent = message;
          notAuthorised(message);
        }
      }).catch(() => {});
    };
  }

  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('token').value.trim();
    if (!token) return;
    sessionStorage.setItem('autoprox-admin-token', token);
    connect(token);
  });
  const fromUrl = new URLSearchParams(location.search).get('access_token');
  const saved = fromUrl || sessionStorage.getItem('autoprox-admin-token');
  if (fromUrl) history.replaceState(null, '', location.pathname);
  if (saved) { sessionStorage.setItem('autoprox-admin-token', saved); connect(saved); }
})();
</script>
</body>
</html>
`;
