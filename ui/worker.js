/* worker.js - a worker's pages, phone first: the inbox (offers, my open
 * assignments, overdue ones) and one assignment with its actions.
 * Each action shows that it is pending; one that failed can be tried again
 * with the same body (and the same Idempotency-Key), and before a retry the
 * assignment is read again, so an action whose answer was lost is not done
 * twice. */
'use strict';
(function (R) {
  const { el, replace, main, say } = R.dom;
  const t = (...a) => R.i18n.t(...a);
  const f = () => R.i18n.fmt;

  const OPEN = ['accepted', 'in_progress', 'on_hold'];
  const DECLINE_REASONS = ['no_capacity', 'outside_area', 'language', 'conflict_of_interest', 'other'];
  const OUTCOMES = ['linked_to_services', 'engaged', 'declined_services', 'other'];
  const FAIL_REASONS = ['lost_contact', 'client_declined', 'detained', 'other'];

  /* Has this action visibly happened to assignment a? Used after a lost answer. */
  const DONE = {
    accept: a => a.status !== 'offered',
    decline: a => a.status !== 'offered',
    contact_made: a => !!a.first_contact_at,
    hold: a => a.status === 'on_hold',
    resume: a => a.status === 'in_progress',
    complete: a => a.status === 'completed',
    fail: a => a.status === 'failed'
  };

  /* Run one action on a button: pending state, error with retry. */
  function action(btn, errBox, name, id, path, body, after) {
    const key = R.api.newKey();
    const label = btn.textContent;
    async function attempt(isRetry) {
      btn.disabled = true; btn.setAttribute('aria-busy', 'true'); btn.textContent = t('action.pending');
      errBox.textContent = '';
      say(t('action.pending'));
      try {
        if (isRetry && DONE[name]) {
          const cur = await R.api.call('GET', '/v1/assignments/' + id);
          if (DONE[name](cur)) { say(t('action.done')); after(cur); return; }
        }
        const res = await R.api.call('POST', path, body, { idempotencyKey: key });
        say(t('action.done'), 'ok');
        after(res);
      } catch (e) {
        if (e.status === 401) return;
        btn.disabled = false; btn.removeAttribute('aria-busy'); btn.textContent = label;
        const msg = e.status === 0 ? t('error.network') : e.code === 'invalid_transition'
          ? t('error.invalid_transition') : e.status === 404 ? t('error.not_found') : t('error.generic');
        say(msg, 'error');
        replace(errBox, el('span', {}, msg), ' ',
          el('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'retry',
            onclick: () => attempt(true) }, t('action.retry')));
      }
    }
    attempt(false);
  }

  function needLabel(a) { return t('need.' + a.need); }
  function statusBadge(a) {
    return el('span', { class: 'badge badge-' + a.status }, t('status.' + a.status));
  }

  function item(a, opts) {
    const err = el('p', { class: 'error', role: 'alert' });
    const meta = el('p', { class: 'meta' },
      t('region.label'), ': ', R.i18n.region(a.region), ' · ',
      a.urgency === 'urgent' ? el('strong', { class: 'urgent' }, t('urgency.urgent')) : t('urgency.normal'));
    const when = a.status === 'offered' && a.offer_expires_at
      ? el('p', { class: 'meta' }, t('offer.expires'), ' ', el('time', { datetime: a.offer_expires_at },
          f().dateTime(a.offer_expires_at)))
      : a.accepted_at ? el('p', { class: 'meta' }, t('time.accepted'), ' ',
          el('time', { datetime: a.accepted_at }, f().dateTime(a.accepted_at))) : null;
    const head = el('a', { href: '?view=assignment&id=' + encodeURIComponent(a.id), class: 'item-title',
      onclick: (e) => { e.preventDefault(); R.app.go('assignment', { id: a.id }); } },
      needLabel(a));
    const li = el('li', { class: 'item', 'data-testid': opts.testid, 'data-assignment-id': a.id },
      el('div', { class: 'item-head' }, head, statusBadge(a)), meta, when);
    if (opts.offer) {
      const acc = el('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'accept' },
        t('action.accept'));
      const dec = el('button', { type: 'button', class: 'btn', 'data-testid': 'decline',
        'aria-expanded': 'false' }, t('action.decline'));
      acc.addEventListener('click', () => action(acc, err, 'accept', a.id,
        '/v1/assignments/' + a.id + '/accept', {}, () => inbox()));
      const box = el('div', { class: 'decline-box', hidden: true });
      dec.addEventListener('click', () => {
        box.hidden = !box.hidden; dec.setAttribute('aria-expanded', String(!box.hidden));
        if (!box.hidden) box.querySelector('select').focus();
      });
      const selId = 'decline-reason-' + a.id;
      const sel = el('select', { id: selId, class: 'input', 'data-testid': 'decline-reason' },
        DECLINE_REASONS.map(r => el('option', { value: r }, t('decline.' + r))));
      const send = el('button', { type: 'button', class: 'btn btn-danger', 'data-testid': 'decline-confirm' },
        t('action.decline_confirm'));
      send.addEventListener('click', () => action(send, err, 'decline', a.id,
        '/v1/assignments/' + a.id + '/decline', { reason: sel.value }, () => inbox()));
      box.append(el('label', { for: selId, class: 'label' }, t('decline.reason')), sel, send);
      li.append(el('div', { class: 'actions' }, acc, dec), box);
    }
    li.append(err);
    return li;
  }

  function section(title, testid, itemTestid, items, opts, emptyText) {
    const id = 'h-' + testid;
    return el('section', { class: 'section', 'aria-labelledby': id },
      el('h2', { id }, title, ' ', el('span', { class: 'count' }, String(items.length))),
      items.length
        ? el('ul', { class: 'list', 'data-testid': testid }, items.map(a => item(a, Object.assign({ testid: itemTestid }, opts))))
        : el('p', { class: 'empty', 'data-testid': testid }, emptyText));
  }

  async function inbox() {
    const m = main();
    replace(m, el('h1', {}, t('inbox.title')), el('p', { class: 'loading', 'aria-busy': 'true' }, t('loading')));
    try {
      const [offered, overdue, ...open] = await Promise.all([
        R.api.list('/v1/assignments?status=offered'),
        R.api.list('/v1/assignments?overdue=true'),
        ...OPEN.map(s => R.api.list('/v1/assignments?status=' + s))
      ]);
      const mine = open.flat().sort((x, y) => (y.updated_at || '').localeCompare(x.updated_at || ''));
      replace(m, el('h1', {}, t('inbox.title')),
        section(t('inbox.offers'), 'inbox', 'inbox-item', offered, { offer: true }, t('inbox.no_offers')),
        section(t('inbox.mine'), 'mine', 'mine-item', mine, {}, t('inbox.no_mine')),
        section(t('inbox.overdue'), 'overdue-list', 'overdue-item', overdue, {}, t('inbox.no_overdue')));
    } catch (e) {
      if (e.status !== 401) showLoadError(m, inbox);
    }
  }

  function showLoadError(m, again) {
    replace(m, el('p', { class: 'error', role: 'alert' }, t('error.load')),
      el('button', { type: 'button', class: 'btn', onclick: again }, t('action.retry')));
  }

  function field(label, value) {
    return [el('dt', {}, label), el('dd', {}, value)];
  }

  function timeEl(v) { return v ? el('time', { datetime: v }, f().dateTime(v)) : '—'; }

  /* A form that sends one action with a select and optional detail. */
  function outcomeForm(a, kind, done) {
    const codes = kind === 'complete' ? OUTCOMES : FAIL_REASONS;
    const key = kind === 'complete' ? 'outcome' : 'reason';
    const sid = kind + '-code', did = kind + '-detail';
    const err = el('p', { class: 'error', role: 'alert' });
    const sel = el('select', { id: sid, class: 'input', 'data-testid': kind + '-' + key },
      codes.map(c => el('option', { value: c }, t((kind === 'complete' ? 'outcome.' : 'fail.') + c))));
    const det = el('textarea', { id: did, class: 'input', rows: '3', maxlength: '2000', 'data-testid': kind + '-detail' });
    const send = el('button', { type: 'submit', class: kind === 'complete' ? 'btn btn-primary' : 'btn btn-danger',
      'data-testid': kind + '-confirm' }, t('action.' + kind + '_confirm'));
    const form = el('form', { class: 'subform', onsubmit: (e) => {
      e.preventDefault();
      const body = { [key]: sel.value };
      if (det.value.trim()) body.detail = det.value.trim();
      action(send, err, kind, a.id, '/v1/assignments/' + a.id + '/' + kind, body, done);
    } },
      el('label', { for: sid, class: 'label' }, t(kind === 'complete' ? 'complete.outcome' : 'fail.reason')), sel,
      el('label', { for: did, class: 'label' }, t('detail.label')), det, send, err);
    return form;
  }

  async function detail(id) {
    const m = main();
    replace(m, el('p', { class: 'loading', 'aria-busy': 'true' }, t('loading')));
    let a;
    try {
      a = await R.api.call('GET', '/v1/assignments/' + encodeURIComponent(id || ''));
    } catch (e) {
      if (e.status === 401) return;
      if (e.status === 404) {
        replace(m, el('p', { class: 'error', role: 'alert' }, t('error.not_found')), backLink());
        return;
      }
      showLoadError(m, () => detail(id));
      return;
    }
    const reload = () => detail(id);
    const dl = el('dl', { class: 'facts' },
      field(t('field.status'), statusBadge(a)),
      field(t('region.label'), R.i18n.region(a.region)),
      field(t('field.urgency'), t('urgency.' + a.urgency)),
      field(t('field.languages'), (a.languages || []).map(l => R.i18n.language(l)).join(', ')),
      a.offer_expires_at && a.status === 'offered' ? field(t('offer.expires'), timeEl(a.offer_expires_at)) : null,
      field(t('time.accepted'), timeEl(a.accepted_at)),
      field(t('time.first_contact'), timeEl(a.first_contact_at)),
      a.ended_at ? field(t('time.ended'), timeEl(a.ended_at)) : null,
      a.status === 'failed' ? field(t('field.outcome'), FAIL_REASONS.includes(a.reason)
        ? t('status.failed') + ': ' + t('fail.' + a.reason) : t('status.failed'))
        : a.outcome ? field(t('field.outcome'), t('outcome.' + a.outcome)) : null);
    const parts = [backLink(), el('h1', {}, needLabel(a)), dl];
    if (a.overdue) parts.push(el('p', { class: 'warn', 'data-testid': 'overdue-flag' }, t('inbox.overdue_one')));
    /* The client's contact and the note exist in the answer only when the API
     * chose to show them (this worker, once accepted). */
    const client = a.client || {};
    const contact = client.contact || a.contact;
    if (client.birth_year) dl.append(...field(t('field.client'), `${t('gender.' + client.gender)}, ${client.birth_year}`));
    if (contact || a.note) {
      const c = el('section', { class: 'card contact', 'aria-labelledby': 'h-contact' },
        el('h2', { id: 'h-contact' }, t('contact.title')));
      if (contact && contact.phone) {
        c.append(el('a', { class: 'btn btn-call', href: 'tel:' + String(contact.phone).replace(/[^+0-9]/g, ''),
          'data-testid': 'call' }, t('contact.call'), ' ', el('span', { class: 'phone' }, contact.phone)));
      }
      if (a.note) c.append(el('h3', {}, t('contact.note')), el('p', { class: 'note-text', 'data-testid': 'note' }, a.note));
      parts.push(c);
    }
    const err = el('p', { class: 'error', role: 'alert' });
    const acts = el('div', { class: 'actions actions-col' });
    const btn = (name, label, cls) => el('button', { type: 'button', class: 'btn ' + (cls || ''), 'data-testid': name }, label);
    if (a.status === 'offered') {
      const acc = btn('accept', t('action.accept'), 'btn-primary');
      acc.addEventListener('click', () => action(acc, err, 'accept', a.id, '/v1/assignments/' + a.id + '/accept', {}, reload));
      acts.append(acc);
    }
    if (a.status === 'accepted' || a.status === 'in_progress') {
      const at = btn('contact-attempt', t('action.contact_attempt'));
      const made = btn('contact-made', t('action.contact_made'), 'btn-primary');
      const hold = btn('hold', t('action.hold'));
      at.addEventListener('click', () => action(at, err, 'contact_attempt', a.id, '/v1/assignments/' + a.id + '/events',
        { type: 'contact_attempt', at: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }, reload));
      made.addEventListener('click', () => action(made, err, 'contact_made', a.id, '/v1/assignments/' + a.id + '/events',
        { type: 'contact_made', at: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }, reload));
      hold.addEventListener('click', () => action(hold, err, 'hold', a.id, '/v1/assignments/' + a.id + '/hold',
        { reason: 'client_unavailable' }, reload));
      acts.append(at, made, hold);
    }
    if (a.status === 'on_hold') {
      const res = btn('resume', t('action.resume'), 'btn-primary');
      res.addEventListener('click', () => action(res, err, 'resume', a.id, '/v1/assignments/' + a.id + '/resume', {}, reload));
      acts.append(res);
    }
    parts.push(el('section', { class: 'section', 'aria-label': t('actions.title') }, acts, err));
    if (a.status === 'in_progress') {
      parts.push(el('details', { class: 'card', 'data-testid': 'complete-box' },
        el('summary', { 'data-testid': 'complete' }, t('action.complete')), outcomeForm(a, 'complete', reload)));
      parts.push(el('details', { class: 'card', 'data-testid': 'fail-box' },
        el('summary', { 'data-testid': 'fail' }, t('action.fail')), outcomeForm(a, 'fail', reload)));
    }
    replace(m, ...parts);
  }

  function backLink() {
    return el('a', { href: '?view=inbox', class: 'back', onclick: (e) => { e.preventDefault(); R.app.go('inbox'); } },
      '← ', t('nav.back_inbox'));
  }

  R.worker = { inbox, detail };
})(window.RFD = window.RFD || {});
