// What the daemon sends with its pages, seen by the browser and by fetch:
// strict CSP, nosniff, no referrer, no framing; ETag and 304; gzip when
// accepted; versioned assets immutable; and every request of a full page
// load goes to the daemon's own origin.
import { withBrowser, context, newPage, clean, ok, env, assert } from './lib.mjs';

export default async function () {
  const base = env('REFD_URL');
  await withBrowser(async (browser) => {
    const ctx = await context(browser, {});
    const page = await newPage(ctx);
    const resp = [];
    page.on('response', r => resp.push(r));
    const main = await page.goto(base + '/ui/');
    await page.getByTestId('sign-in').waitFor();
    const h = await main.allHeaders();
    const csp = h['content-security-policy'];
    assert.ok(csp, 'no CSP');
    for (const d of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
      "object-src 'none'", "base-uri 'none'"]) assert.ok(csp.includes(d), `CSP lacks ${d}`);
    assert.ok(!/unsafe-inline|unsafe-eval|\*|https?:/.test(csp), 'CSP admits more than self');
    assert.equal(h['x-content-type-options'], 'nosniff');
    assert.equal(h['referrer-policy'], 'no-referrer');
    assert.equal(h['cache-control'], 'no-cache');
    assert.match(h['etag'], /^"[0-9a-f]{32}(-gz)?"$/);
    ok('the page: strict CSP, nosniff, no-referrer, revalidated with an ETag');
    const assets = resp.filter(r => /\/ui\/.+\.(js|css|svg)\?v=/.test(r.url()));
    assert.ok(assets.length >= 7, `only ${assets.length} versioned assets`);
    for (const r of assets) {
      const ah = await r.allHeaders();
      assert.equal(ah['cache-control'], 'public, max-age=31536000, immutable', r.url());
      assert.equal(ah['content-encoding'], 'gzip', r.url());
      assert.ok(ah['content-security-policy'], r.url());
    }
    ok(`${assets.length} versioned assets: gzip, immutable, each with the CSP`);
    // The page cannot be framed, and would not run an inline script.
    const inline = await page.evaluate(() => new Promise((res) => {
      window.__inl = 0;
      document.addEventListener('securitypolicyviolation', () => res('blocked'), { once: true });
      const s = document.createElement('script');
      s.textContent = 'window.__inl = 1';
      document.head.appendChild(s);
      setTimeout(() => res(window.__inl ? 'ran' : 'silent'), 500);
    }));
    assert.equal(inline, 'blocked', 'an inline script was not blocked');
    ctx.violations.length = 0;   // that violation was ours
    ok('an inline script injected into the page is blocked by the CSP');
    clean(ctx);
  });

  // Plain HTTP semantics, through fetch.
  let r = await fetch(base + '/ui/', { headers: { 'Accept-Encoding': 'identity' } });
  const etag = r.headers.get('etag');
  const body = await r.text();
  assert.ok(body.startsWith('<!doctype html>'));
  assert.equal(r.headers.get('content-encoding'), null);
  r = await fetch(base + '/ui/', { headers: { 'If-None-Match': etag, 'Accept-Encoding': 'identity' } });
  assert.equal(r.status, 304);
  r = await fetch(base + '/ui/app.js', { headers: { 'Accept-Encoding': 'gzip;q=0, identity' } });
  assert.equal(r.headers.get('content-encoding'), null);
  assert.equal(r.headers.get('cache-control'), 'no-cache', 'an unversioned URL must revalidate');
  r = await fetch(base + '/ui', { redirect: 'manual' });
  assert.equal(r.status, 301); assert.equal(r.headers.get('location'), '/ui/');
  r = await fetch(base + '/ui/../v1/me');
  assert.notEqual(r.status, 200);
  r = await fetch(base + '/ui/nope.js');
  assert.equal(r.status, 404);
  r = await fetch(base + '/ui/', { method: 'POST' });
  assert.equal(r.status, 405);
  ok('ETag -> 304, identity when gzip is refused, /ui -> /ui/, unknown files 404, POST 405');
}
