// Figures, not targets (speed targets live only in benchmarks): bytes on
// the wire for the worker's inbox on a first load (empty cache) and on a
// repeat load, and the time from navigation to the inbox shown, on a phone.
// The one assertion: a repeat load costs fewer bytes (the cache works).
import { writeFileSync } from 'node:fs';
import { withBrowser, context, newPage, ok, env, assert, SHOTS } from './lib.mjs';

async function load(page, cdp, url) {
  let bytes = 0, requests = 0;
  const done = (e) => { bytes += e.encodedDataLength; requests++; };
  cdp.on('Network.loadingFinished', done);
  const t0 = Date.now();
  await page.goto(url);
  await page.locator('[data-testid="inbox"]').waitFor();
  const ms = Date.now() - t0;
  await page.waitForLoadState('networkidle');
  cdp.off('Network.loadingFinished', done);
  return { bytes, requests, ms };
}

export default async function () {
  await withBrowser(async (browser) => {
    const ctx = await context(browser, { viewport: { width: 390, height: 844 }, isMobile: true, locale: 'ky-KG' });
    const page = await newPage(ctx);
    const token = env('UI_WX_TOKEN');
    // A signed-in tab (the session as the sign-in page leaves it).
    await page.addInitScript((t) => {
      if (!sessionStorage.getItem('refd.session'))
        sessionStorage.setItem('refd.session', JSON.stringify({ token: t, role: 'worker' }));
    }, token);
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Network.enable');
    const url = env('REFD_URL') + '/ui/?view=inbox';
    const first = await load(page, cdp, url);
    const repeat = await load(page, cdp, url);
    const m = { first_load: first, repeat_load: repeat };
    writeFileSync(`${SHOTS}/measure.json`, JSON.stringify(m, null, 2) + '\n');
    console.log(`  page weight, first load: ${first.bytes} bytes in ${first.requests} responses; ` +
      `repeat load: ${repeat.bytes} bytes in ${repeat.requests} responses`);
    console.log(`  time to inbox: first load ${first.ms} ms, repeat load ${repeat.ms} ms (loopback, this machine)`);
    assert.ok(repeat.bytes < first.bytes, 'a repeat load cost as many bytes as the first');
    ok('measured (figures above, also in build/ui-shots/measure.json)');
  });
}
