// lib.mjs - what every browser scenario shares: Debian's Chromium under
// playwright-core, the daemon's real TLS (its key pinned by SPKI hash, no
// "ignore all certificate errors"), the API over fetch (the test CA through
// NODE_EXTRA_CA_CERTS), a watch on every request the page makes and on CSP
// violations, axe-core, and screenshots under build/ui-shots/.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';

const require = createRequire(import.meta.url);
export const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`missing env ${k}`); return v; };
export const BASE = () => env('REFD_URL');
export const SHOTS = process.env.UI_SHOTS || 'build/ui-shots';
mkdirSync(SHOTS, { recursive: true });

let step = 0;
export function ok(msg) { step++; console.log(`  ok ${step} ${msg}`); }

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // As root on this kind of machine, and with no network beyond loopback.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage', `--ignore-certificate-errors-spki-list=${env('UI_SPKI')}`]
  });
}

// withBrowser(async (browser) => ...): on a failed step, what each page
// showed goes to the log and to FAILED-*.png before the browser closes.
export async function withBrowser(fn) {
  const b = await launch();
  try {
    await fn(b);
  } catch (e) {
    await dumpPages();
    throw e;
  } finally {
    await b.close();
  }
}

// A context with the watchers: every request must go to the daemon's origin,
// no CSP violation may happen, no dialog may open (an XSS would alert).
export async function context(browser, opts) {
  const ctx = await browser.newContext(Object.assign({ acceptDownloads: true }, opts || {}));
  const origin = new URL(BASE()).origin;
  ctx.foreign = [];
  ctx.dialogs = [];
  ctx.violations = [];
  ctx.on('request', (req) => {
    const u = req.url();
    if (u.startsWith('blob:') || u.startsWith('data:')) return;
    if (new URL(u).origin !== origin) ctx.foreign.push(u);
  });
  ctx.on('page', (p) => watchPage(ctx, p));
  return ctx;
}

function watchPage(ctx, page) {
  page.on('dialog', (d) => { ctx.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('console', (m) => { if (m.type() === 'error') ctx.violations.push('console: ' + m.text()); });
  page.on('pageerror', (e) => ctx.violations.push('pageerror: ' + e.message));
}

export const pages = [];
export async function newPage(ctx) {
  const page = await ctx.newPage();
  pages.push(page);
  // Report CSP violations from inside the page.
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI);
    });
  });
  return page;
}

export function clean(ctx) {
  assert.deepEqual(ctx.foreign, [], 'requests to another origin');
  assert.deepEqual(ctx.dialogs, [], 'a dialog opened (script ran from data)');
  assert.deepEqual(ctx.violations.filter(v => !/Failed to load resource/.test(v)), [], 'console errors or CSP violations');
}

// On failure: what each open page showed, for the log and as a picture.
export async function dumpPages() {
  let i = 0;
  for (const p of pages) {
    try {
      if (p.isClosed()) continue;
      i++;
      await p.screenshot({ path: `${SHOTS}/FAILED-${i}.png`, fullPage: true });
      const text = await p.evaluate(() => document.body.innerText);
      console.error(`--- page ${i} (${p.url().split('?')[0]}):\n${text.slice(0, 1500)}`);
    } catch (e) { /* the page is gone */ }
  }
}

export async function shot(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

// axe-core in the page. page.evaluate runs through the DevTools protocol,
// which the page's CSP does not govern: the page itself still admits no
// script but its own.
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
export async function axe(page, name) {
  const res = await page.evaluate(async (src) => {
    if (!window.axe) (0, eval)(src);
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map(v => ({ id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5) }));
  }, AXE);
  const bad = res.filter(v => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `axe: serious or critical violations on ${name}`);
  ok(`axe-core: no serious or critical violation on ${name} (${res.length} minor)`);
}

// The API as a test client, to confirm what the pages did.
export async function api(token, method, path, body, headers) {
  const h = Object.assign({ Accept: 'application/json' }, headers || {});
  if (token) h.Authorization = 'Bearer ' + token;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const res = await fetch(BASE() + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (e) { json = text; }
  return { status: res.status, body: json, headers: res.headers };
}

export async function signIn(page, secret) {
  await page.goto(BASE() + '/ui/');
  await page.getByTestId('token-input').fill(secret);
  await page.getByTestId('sign-in').click();
  await page.getByTestId('sign-out').waitFor();   // signed in and the first page drawn
}

// No sideways scrolling at this width.
export async function noSideScroll(page, name) {
  const [sw, cw] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  assert.ok(sw <= cw, `${name}: page is ${sw}px wide in a ${cw}px viewport`);
}

// Every button and link a thumb must hit is at least 44 px high.
export async function touchTargets(page, name) {
  const small = await page.evaluate(() => [...document.querySelectorAll('main button, main a, main select, main input, main summary')]
    .filter(e => e.offsetParent !== null)
    .map(e => [e.getAttribute('data-testid') || e.textContent.trim().slice(0, 20), e.getBoundingClientRect().height])
    .filter(([, h]) => h < 44));
  assert.deepEqual(small, [], `${name}: touch targets under 44 px`);
}

export { assert };
