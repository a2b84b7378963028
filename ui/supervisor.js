/* supervisor.js - a supervisor's pages, desktop first and usable on a
 * tablet: overdue and unassigned assignments with reassign, the follow-up
 * report as charts and a table (with its CSV), and sign-in codes for the
 * organisation's workers. */
'use strict';
(function (R) {
  const { el, replace, main, say } = R.dom;
  const t = (...a) => R.i18n.t(...a);
  const f = () => R.i18n.fmt;

  let workersCache = null;
  async function workers(force) {
    if (!workersCache || force) workersCache = (await R.api.call('GET', '/v1/workers')).items || [];
    return workersCache;
  }
  function handleOf(id, ws) {
    const w = ws.find(x => x.id === id);
    return w ? w.handle : (id ? t('worker.unknown') : '—');
  }

  function loadError(m, again) {
    replace(m, el('p', { class: 'error', role: 'alert' }, t('error.load')),
      el('button', { type: 'button', class: 'btn', onclick: again }, t('action.retry')));
  }

  /* ---- overview: overdue and unassigned ---- */
  function reassignForm(a, ws, done) {
    const wid = 'rw-' + a.id, rid = 'rr-' + a.id;
    const err = el('p', { class: 'error', role: 'alert' });
    const cands = ws.filter(w => w.kind === a.need && w.active && !w.on_leave && w.id !== a.worker_id);
    const sel = el('select', { id: wid, class: 'input', 'data-testid': 'reassign-worker', required: true },
      cands.map(w => el('option', { value: w.id }, `${w.handle} (${f().number(w.open)}/${f().number(w.capacity)})`)));
    const reason = el('input', { id: rid, class: 'input', type: 'text', maxlength: '500', required: true,
      'data-testid': 'reassign-reason', oninput: () => { err.textContent = ''; } });
    const send = el('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'reassign-confirm' },
      t('reassign.confirm'));
    const key = R.api.newKey();
    const form = el('form', { class: 'subform', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      if (!reason.value.trim()) { err.textContent = t('reassign.reason_required'); reason.focus(); return; }
      if (!sel.value) { err.textContent = t('reassign.no_worker'); return; }
      send.disabled = true; send.setAttribute('aria-busy', 'true'); send.textContent = t('action.pending');
      err.textContent = '';
      try {
        await R.api.call('POST', '/v1/assignments/' + a.id + '/reassign',
          { worker_id: sel.value, reason: reason.value.trim() }, { idempotencyKey: key });
        say(t('reassign.done'), 'ok');
        done();
      } catch (ex) {
        if (ex.status === 401) return;
        send.disabled = false; send.removeAttribute('aria-busy'); send.textContent = t('reassign.confirm');
        err.textContent = ex.status === 0 ? t('error.network') : ex.code === 'invalid_transition'
          ? t('error.invalid_transition') : t('reassign.failed');
      }
    } },
      el('label', { for: wid, class: 'label' }, t('reassign.worker')), sel,
      el('label', { for: rid, class: 'label' }, t('reassign.reason')), reason, send, err);
    if (!cands.length) return el('p', { class: 'note' }, t('reassign.no_worker'));
    return form;
  }

  function table(caption, items, ws, testid, reload) {
    if (!items.length) return el('p', { class: 'empty', 'data-testid': testid }, t('list.empty'));
    const rows = items.map(a => {
      const box = el('td', { colspan: '7', class: 'reassign-cell' });
      const tr2 = el('tr', { class: 'reassign-row', hidden: true }, box);
      const btn = el('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'reassign',
        'aria-expanded': 'false' }, t('action.reassign'));
      btn.addEventListener('click', () => {
        tr2.hidden = !tr2.hidden; btn.setAttribute('aria-expanded', String(!tr2.hidden));
        if (!tr2.hidden && !box.firstChild) box.append(reassignForm(a, ws, reload));
        const first = box.querySelector('select, input');
        if (!tr2.hidden && first) first.focus();
      });
      return [el('tr', { 'data-assignment-id': a.id, 'data-testid': testid + '-item' },
        el('td', {}, t('need.' + a.need)),
        el('td', {}, R.i18n.region(a.region)),
        el('td', {}, t('urgency.' + a.urgency)),
        el('td', {}, el('span', { class: 'badge badge-' + a.status }, t('status.' + a.status))),
        el('td', {}, handleOf(a.worker_id, ws)),
        el('td', {}, a.created_at ? el('time', { datetime: a.created_at }, f().dateTime(a.created_at)) : '—'),
        el('td', {}, btn)), tr2];
    });
    return el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption },
      el('table', { class: 'table', 'data-testid': testid },
      el('caption', { class: 'sr-only' }, caption),
      el('thead', {}, el('tr', {}, ['col.need', 'region.label', 'field.urgency', 'field.status', 'col.worker',
        'col.created', 'col.action'].map(k => el('th', { scope: 'col' }, t(k))))),
      el('tbody', {}, rows.flat())));
  }

  async function overview() {
    const m = main();
    replace(m, el('h1', {}, t('overview.title')), el('p', { class: 'loading', 'aria-busy': 'true' }, t('loading')));
    try {
      const [ws, overdue, unassigned] = await Promise.all([workers(true),
        R.api.list('/v1/assignments?overdue=true'), R.api.list('/v1/assignments?status=unassigned')]);
      const openOverdue = overdue.filter(a => ['offered', 'accepted', 'in_progress', 'on_hold', 'unassigned'].includes(a.status));
      replace(m, el('h1', {}, t('overview.title')),
        el('section', { class: 'section', 'aria-labelledby': 'h-overdue' },
          el('h2', { id: 'h-overdue' }, t('overview.overdue'), ' ', el('span', { class: 'count' }, String(openOverdue.length))),
          table(t('overview.overdue'), openOverdue, ws, 'overdue-list', overview)),
        el('section', { class: 'section', 'aria-labelledby': 'h-unassigned' },
          el('h2', { id: 'h-unassigned' }, t('overview.unassigned'), ' ', el('span', { class: 'count' }, String(unassigned.length))),
          table(t('overview.unassigned'), unassigned, ws, 'unassigned-list', overview)));
    } catch (e) {
      if (e.status !== 401) loadError(m, overview);
    }
  }

  /* ---- the follow-up report ---- */
  const GROUPS = ['organisation', 'region', 'office', 'worker', 'need'];
  const METRICS = ['met', 'on_time', 'missed', 'on_time_rate', 'median_seconds', 'p90_seconds'];

  function isoDay(d) { return d.toISOString().slice(0, 10); }
  /* Midnight of a calendar day in the page's time zone, as RFC 3339 UTC. */
  function zonedMidnight(day, tz) {
    const [y, mo, d] = day.split('-').map(Number);
    const guess = Date.UTC(y, mo - 1, d);
    const p = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23',
      year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
      .formatToParts(new Date(guess)).map(x => [x.type, x.value]));
    const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second);
    return new Date(guess - (asUtc - guess)).toISOString().replace(/\.\d+Z$/, 'Z');
  }
  function addDays(day, n) { const d = new Date(day + 'T00:00:00Z'); d.setUTCDate(d.getUTCDate() + n); return isoDay(d); }

  function cellText(key, v) {
    if (v == null) return '—';
    if (key === 'on_time_rate') return f().percent(v);
    if (key.endsWith('_seconds')) return f().duration(v);
    return f().number(v);
  }

  /* The table model: header texts and rows of {text, value}; both the
   * table and its CSV are drawn from it, so the CSV is the table shown. */
  function tableModel(rep) {
    const head = [t('group.' + rep.group_by), t('col.offers'), t('col.assignments')];
    for (const sec of ['accept', 'first_contact'])
      for (const k of METRICS) head.push(t('sec.' + sec) + ': ' + t('metric.' + k));
    const rows = rep.groups.map(g => {
      const r = [{ text: groupLabel(rep.group_by, g), value: g.key }, { text: cellText('n', g.offers), value: g.offers },
        { text: cellText('n', g.assignments), value: g.assignments }];
      for (const sec of ['accept', 'first_contact'])
        for (const k of METRICS) r.push({ text: cellText(k, g[sec][k]), value: g[sec][k] });
      return r;
    });
    return { head, rows };
  }
  function groupLabel(by, g) {
    if (g.key == null) return t('group.none');
    if (by === 'region') return R.i18n.region(g.key);
    if (by === 'need') return t('need.' + g.key);
    return g.label == null ? String(g.key) : String(g.label);
  }

  function csvCell(s) {
    s = String(s);
    if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return /[",\r\n;]/.test(s) || s !== s.trim() ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function toCsv(model) {
    return [model.head, ...model.rows.map(r => r.map(c => c.text))].map(r => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
  }

  function download(name, text) {
    const url = URL.createObjectURL(new Blob(['\ufeff' + text], { type: 'text/csv;charset=utf-8' }));
    const a = el('a', { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(url); a.remove(); }, 1000);
  }

  async function report(params) {
    const m = main();
    const tz = R.i18n.timeZone();
    let from = params.get('from'), to = params.get('to');
    const by = GROUPS.includes(params.get('group_by')) ? params.get('group_by') : 'organisation';
    if (!/^\d{4}-\d{2}-\d{2}$/.test(from || '') || !/^\d{4}-\d{2}-\d{2}$/.test(to || '')) {
      const today = new Intl.DateTimeFormat('en-CA', { timeZone: tz }).format(new Date());
      to = addDays(today, 1); from = addDays(today, -29);
      R.app.go('report', { from, to, group_by: by }, true);
      return;
    }
    const fromIn = el('input', { id: 'f-from', type: 'date', class: 'input', value: from, name: 'from' });
    const toIn = el('input', { id: 'f-to', type: 'date', class: 'input', value: addDays(to, -1), name: 'to' });
    const bySel = el('select', { id: 'f-by', class: 'input', name: 'group_by', 'data-testid': 'group-by' },
      GROUPS.map(g => el('option', { value: g, selected: g === by }, t('group.' + g))));
    const filters = el('form', { class: 'filters', 'aria-label': t('report.filters'), onsubmit: (e) => {
      e.preventDefault();
      if (!fromIn.value || !toIn.value) return;
      R.app.go('report', { from: fromIn.value, to: addDays(toIn.value, 1), group_by: bySel.value });
    } },
      el('div', { class: 'filter' }, el('label', { for: 'f-from', class: 'label' }, t('report.from')), fromIn),
      el('div', { class: 'filter' }, el('label', { for: 'f-to', class: 'label' }, t('report.to')), toIn),
      el('div', { class: 'filter' }, el('label', { for: 'f-by', class: 'label' }, t('report.group_by')), bySel),
      el('div', { class: 'filter' }, el('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'report-apply' }, t('report.apply'))));
    replace(m, el('h1', {}, t('report.title')), filters, el('p', { class: 'loading', 'aria-busy': 'true' }, t('loading')));
    let rep;
    try {
      const q = new URLSearchParams({ from: zonedMidnight(from, tz), to: zonedMidnight(to, tz), group_by: by });
      rep = await R.api.call('GET', '/v1/reports/follow-up?' + q.toString());
    } catch (e) {
      if (e.status !== 401) loadError(m, () => report(params));
      return;
    }
    const bounds = rep.histogram_bounds_seconds || [];
    const bucketLabels = [t('bucket.lt', { d: f().duration(bounds[0]) })];
    for (let i = 1; i < bounds.length; i++)
      bucketLabels.push(f().duration(bounds[i - 1]) + '–' + f().duration(bounds[i]));
    bucketLabels.push(t('bucket.ge', { d: f().duration(bounds[bounds.length - 1]) }));
    const rowsFor = sec => rep.groups.map(g => ({ key: g.key, label: groupLabel(by, g),
      counts: g[sec].histogram || [0, 0, 0, 0, 0], median: g[sec].median_seconds, p90: g[sec].p90_seconds }));
    const figure = (id, title, svg, note) => el('figure', { class: 'card figure', 'data-testid': 'report-chart', 'data-chart': id },
      el('figcaption', { id: 'cap-' + id }, el('strong', {}, title), note ? el('span', { class: 'help' }, ' ', note) : null), svg);
    const model = tableModel(rep);
    const tbl = el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': t('report.table_title') }, el('table', { class: 'table table-report', 'data-testid': 'report-table' },
      el('caption', {}, t('report.table', { by: t('group.' + by) })),
      el('thead', {}, el('tr', {}, model.head.map(h => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, model.rows.map(r => el('tr', {}, r.map((c, i) => i === 0
        ? el('th', { scope: 'row', 'data-value': c.value == null ? '' : c.value }, c.text)
        : el('td', { 'data-value': c.value == null ? '' : c.value }, c.text)))))));
    const csv = el('button', { type: 'button', class: 'btn', 'data-testid': 'csv-download' }, t('report.csv'));
    csv.addEventListener('click', () => download(`follow-up-${by}-${from}-${addDays(to, -1)}.csv`, toCsv(model)));
    const fmt = Object.assign({}, f(), { empty: t('report.no_data') });
    replace(m, el('h1', {}, t('report.title')), filters,
      el('p', { class: 'help' }, t('report.period', { from: f().day(from + 'T12:00:00Z'), to: f().day(addDays(to, -1) + 'T12:00:00Z'), tz })),
      el('div', { class: 'charts' },
        figure('accept', t('chart.accept', { by: t('group.' + by) }),
          R.chart.distribution(t('chart.accept', { by: t('group.' + by) }), rowsFor('accept'), bucketLabels, fmt), t('chart.side')),
        figure('first_contact', t('chart.first_contact', { by: t('group.' + by) }),
          R.chart.distribution(t('chart.first_contact', { by: t('group.' + by) }), rowsFor('first_contact'), bucketLabels, fmt), t('chart.side')),
        figure('weeks', t('chart.weeks'), R.chart.weekly(t('chart.weeks'), rep.weeks || [],
          [{ key: 'accept', label: t('sec.accept') }, { key: 'first_contact', label: t('sec.first_contact') }], fmt))),
      el('div', { class: 'table-head' }, el('h2', {}, t('report.table_title')), csv), tbl);
  }

  /* ---- workers and sign-in codes ---- */
  async function workersPage() {
    const m = main();
    replace(m, el('h1', {}, t('workers.title')), el('p', { class: 'loading', 'aria-busy': 'true' }, t('loading')));
    let ws;
    try { ws = await workers(true); } catch (e) { if (e.status !== 401) loadError(m, workersPage); return; }
    const rows = ws.map(w => {
      const out = el('div', { class: 'code-out', 'aria-live': 'polite' });
      const btn = el('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'issue-code', 'data-worker-id': w.id },
        t('workers.issue'));
      btn.addEventListener('click', async () => {
        btn.disabled = true; btn.setAttribute('aria-busy', 'true');
        try {
          const r = await R.api.call('POST', '/v1/sign-in-codes', { subject_id: w.id });
          replace(out, el('span', { class: 'code', 'data-testid': 'sign-in-code' }, r.code), ' ',
            el('span', { class: 'help' }, t('workers.valid_until', { t: f().time(r.expires_at) })));
        } catch (e) {
          if (e.status !== 401) replace(out, el('span', { class: 'error' }, t('error.generic')));
        } finally { btn.disabled = false; btn.removeAttribute('aria-busy'); }
      });
      return el('tr', { 'data-worker-id': w.id },
        el('th', { scope: 'row' }, w.handle), el('td', {}, t('need.' + w.kind)),
        el('td', {}, (w.regions || []).map(r => R.i18n.region(r)).join(', ')),
        el('td', {}, `${f().number(w.open)} / ${f().number(w.capacity)}`),
        el('td', {}, w.on_leave ? t('workers.on_leave') : w.active ? t('workers.active') : t('workers.inactive')),
        el('td', {}, btn, out));
    });
    replace(m, el('h1', {}, t('workers.title')), el('p', { class: 'help' }, t('workers.help')),
      el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': t('workers.title') },
        el('table', { class: 'table', 'data-testid': 'workers-table' },
        el('caption', { class: 'sr-only' }, t('workers.title')),
        el('thead', {}, el('tr', {}, ['col.worker', 'col.kind', 'col.regions', 'col.load', 'field.status', 'col.sign_in']
          .map(k => el('th', { scope: 'col' }, t(k))))),
        el('tbody', {}, rows))));
  }

  R.supervisor = { overview, report, workers: workersPage, toCsv };
})(window.RFD = window.RFD || {});
