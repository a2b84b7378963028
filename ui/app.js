/* app.js - the shell: sign-in, the header, and which page is shown.
 * The page is chosen by the URL query (?view=...&...), which never holds a
 * token; the report's filters live there too, so a supervisor can bookmark
 * or share a report view. */
'use strict';
(function (R) {
  const { el, replace, main, say } = R.dom;
  const t = (...a) => R.i18n.t(...a);

  function params() { return new URLSearchParams(location.search); }
  /* Go to a view: the query changes, the page re-renders without reload. */
  function go(view, extra, replaceState) {
    const q = new URLSearchParams(Object.assign({ view }, extra || {}));
    for (const [k, v] of [...q.entries()]) if (v === '' || v == null) q.delete(k);
    const url = location.pathname + '?' + q.toString();
    if (replaceState) history.replaceState(null, '', url); else history.pushState(null, '', url);
    render();
  }

  function navFor(role) {
    const nav = document.getElementById('nav');
    const v = params().get('view') || '';
    const link = (view, label) => el('a', {
      href: '?view=' + view, class: 'nav-link', 'aria-current': v === view ? 'page' : null,
      onclick: (e) => { e.preventDefault(); go(view); }
    }, label);
    if (role === 'worker') replace(nav, link('inbox', t('nav.inbox')));
    else if (role === 'supervisor')
      replace(nav, link('overview', t('nav.overview')), link('report', t('nav.report')),
        link('workers', t('nav.workers')));
    else replace(nav);
    document.getElementById('sign-out').hidden = !role;
  }

  function signInPage(reason) {
    navFor(null);
    const input = el('input', {
      id: 'token-input', 'data-testid': 'token-input', type: 'text', autocomplete: 'one-time-code',
      autocapitalize: 'characters', spellcheck: 'false', required: true, 'aria-describedby': 'sign-in-help',
      class: 'input input-code'
    });
    const err = el('p', { class: 'error', id: 'sign-in-error', role: 'alert' });
    const btn = el('button', { type: 'submit', class: 'btn btn-primary btn-wide', 'data-testid': 'sign-in' },
      t('signin.button'));
    const form = el('form', { class: 'card signin', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      const v = input.value.trim();
      if (!v) { err.textContent = t('signin.empty'); input.focus(); return; }
      btn.disabled = true; btn.setAttribute('aria-busy', 'true'); btn.textContent = t('action.pending');
      err.textContent = '';
      try {
        await signIn(v);
        input.value = '';
        go(null, {}, true);
      } catch (ex) {
        err.textContent = ex.status === 429 ? t('signin.rate_limited')
          : ex.status === 0 ? t('error.network') : t('signin.failed');
        btn.disabled = false; btn.removeAttribute('aria-busy'); btn.textContent = t('signin.button');
        input.focus();
      }
    } },
      el('h1', {}, t('signin.title')),
      reason === 'expired' ? el('p', { class: 'note' }, t('signin.expired')) : null,
      reason === 'signed_out' ? el('p', { class: 'note' }, t('signin.signed_out')) : null,
      el('label', { for: 'token-input', class: 'label' }, t('signin.label')),
      input,
      el('p', { id: 'sign-in-help', class: 'help' }, t('signin.help')),
      err, btn);
    replace(main(), form);
    input.focus();
  }

  const CODE_RE = /^[0-9A-Za-z]{4}[- ]?[0-9A-Za-z]{4}$/;
  async function signIn(v) {
    let token;
    if (CODE_RE.test(v)) {
      const r = await R.api.call('POST', '/v1/sign-in', { code: v }, { auth: false });
      token = r.token;
    } else {
      token = v;
    }
    R.api.setSession({ token });
    try {
      const me = await R.api.call('GET', '/v1/me', undefined, { quiet401: true });
      R.api.setSession({ token, role: me.role, id: me.subject_id, org: me.organisation_id });
    } catch (e) {
      R.api.setSession(null);
      throw e;
    }
  }

  async function signOut() {
    const b = document.getElementById('sign-out');
    b.disabled = true;
    try { await R.api.call('POST', '/v1/sign-out'); } catch (e) { /* forgotten below either way */ }
    R.api.setSession(null);
    b.disabled = false;
    signedOut('signed_out');
  }

  function signedOut(reason) {
    history.replaceState(null, '', location.pathname);
    signInPage(reason);
  }

  function render() {
    const s = R.api.session();
    say('');
    if (!s || !s.token) { signInPage(); return; }
    if (!s.role) {
      /* A sign-in interrupted before it learnt the role (a reload): ask. */
      R.api.call('GET', '/v1/me').then((me) => {
        R.api.setSession({ token: s.token, role: me.role, id: me.subject_id, org: me.organisation_id });
        render();
      }, () => {});
      return;
    }
    navFor(s.role);
    const view = params().get('view');
    if (s.role === 'worker') {
      if (view === 'assignment') R.worker.detail(params().get('id'));
      else R.worker.inbox();
    } else if (s.role === 'supervisor') {
      if (view === 'report') R.supervisor.report(params());
      else if (view === 'workers') R.supervisor.workers();
      else R.supervisor.overview();
    } else {
      replace(main(), el('div', { class: 'card' }, el('h1', {}, t('other.title')),
        el('p', {}, t('other.body'))));
    }
    const h = main().querySelector('h1');
    if (h && document.activeElement === document.body) main().focus({ preventScroll: true });
  }

  function init() {
    R.i18n.init();
    const sel = document.getElementById('language');
    sel.value = R.i18n.lang();
    sel.addEventListener('change', () => { R.i18n.set(sel.value); render(); });
    document.getElementById('sign-out').addEventListener('click', signOut);
    window.addEventListener('popstate', render);
    R.i18n.onChange(() => {
      document.getElementById('sign-out').textContent = t('signout.button');
      document.getElementById('skip-link').textContent = t('skip');
      document.getElementById('language-label').textContent = t('language');
      document.title = t('app.title');
    });
    render();
  }

  R.app = { go, render, signedOut, params };
  document.addEventListener('DOMContentLoaded', init);
})(window.RFD = window.RFD || {});
