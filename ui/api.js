/* api.js - the pages' only way to the daemon.
 * The session token lives in sessionStorage: only scripts of this origin can
 * read it (the CSP admits no other script), it is sent only in the
 * Authorization header, never in a URL, and it is forgotten at sign-out, on a
 * 401 and when the tab is closed. */
'use strict';
(function (R) {
  const KEY = 'refd.session';

  function session() {
    try { return JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch (e) { return null; }
  }
  function setSession(s) {
    if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
    else sessionStorage.removeItem(KEY);
  }

  class ApiError extends Error {
    constructor(status, code, message, field) {
      super(message || code || String(status));
      this.status = status; this.code = code; this.field = field;
    }
  }

  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, x => x.toString(16).padStart(2, '0')).join('');
  }

  /* call('POST', '/v1/...', body, {idempotencyKey, accept, auth:false})
   * -> parsed JSON (or text for CSV). A 401 forgets the session and returns
   * the page to sign-in; status 0 means the network failed (the caller may
   * retry with the same idempotency key). */
  async function call(method, path, body, opts) {
    opts = opts || {};
    const h = { 'Accept': opts.accept || 'application/json' };
    const s = session();
    if (opts.auth !== false && s && s.token) h['Authorization'] = 'Bearer ' + s.token;
    if (body !== undefined) h['Content-Type'] = 'application/json';
    if (opts.idempotencyKey) h['Idempotency-Key'] = opts.idempotencyKey;
    let res;
    try {
      res = await fetch(path, {
        method, headers: h, body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'omit', cache: 'no-store', redirect: 'error', referrerPolicy: 'no-referrer'
      });
    } catch (e) {
      throw new ApiError(0, 'network', 'network');
    }
    if (res.status === 401 && opts.auth !== false && !opts.quiet401) {
      setSession(null);
      if (R.app) R.app.signedOut('expired');
      throw new ApiError(401, 'unauthorized', 'unauthorized');
    }
    const ct = res.headers.get('Content-Type') || '';
    let data = null;
    if (res.status !== 204) {
      const text = await res.text();
      if (ct.startsWith('application/json') && text) {
        try { data = JSON.parse(text); } catch (e) { data = null; }
      } else {
        data = text;
      }
    }
    if (!res.ok) {
      const e = data && data.error ? data.error : {};
      const err = new ApiError(res.status, e.code || 'http_' + res.status, e.message, e.field);
      err.retryAfter = res.headers.get('Retry-After');
      throw err;
    }
    return data;
  }

  /* Every page of a list (the API pages by cursor). */
  async function list(path) {
    const out = [];
    let next = null;
    for (let i = 0; i < 20; i++) {
      const sep = path.includes('?') ? '&' : '?';
      const page = await call('GET', next ? path + sep + 'cursor=' + encodeURIComponent(next) : path);
      out.push(...(page.items || []));
      next = page.next;
      if (!next) break;
    }
    return out;
  }

  R.api = { call, list, session, setSession, newKey, ApiError };
})(window.RFD = window.RFD || {});
