// Server values are text, never markup: a referral's note and an
// organisation's name holding <img src=x onerror=alert(1)> show as those
// characters; no image element appears, no script runs, no dialog opens.
import { withBrowser, context, newPage, clean, api, signIn, ok, env, assert } from './lib.mjs';

const XSS = '<img src=x onerror=alert(1)>';

export default async function () {
  await withBrowser(async (browser) => {
    const ctx = await context(browser, { viewport: { width: 390, height: 844 }, isMobile: true, locale: 'ky-KG' });
    const page = await newPage(ctx);
    await page.addInitScript(() => { window.__xss = 0; window.alert = () => { window.__xss++; }; });
    await signIn(page, env('UI_WX_TOKEN'));
    const item = page.locator(`[data-testid="inbox-item"][data-assignment-id="${env('UI_WX_ASG')}"]`);
    await item.getByTestId('accept').click();
    await page.locator(`[data-testid="mine-item"][data-assignment-id="${env('UI_WX_ASG')}"] a.item-title`).click();
    const note = page.getByTestId('note');
    await note.waitFor();
    assert.equal(await note.textContent(), XSS);
    assert.equal(await page.locator('main img').count(), 0);
    assert.equal(await page.evaluate(() => window.__xss), 0);
    ok('the note shows "<img src=x onerror=alert(1)>" as text; no image, no script');
    const r = await api(env('UI_WX_TOKEN'), 'GET', `/v1/assignments/${env('UI_WX_ASG')}`);
    assert.equal(r.body.note, XSS, 'the API holds the markup as it was sent');
    await page.screenshot({ path: `${process.env.UI_SHOTS || 'build/ui-shots'}/xss-note.png`, fullPage: true });

    const sp = await newPage(ctx);
    await sp.addInitScript(() => { window.__xss = 0; window.alert = () => { window.__xss++; }; });
    await sp.evaluate(() => sessionStorage.clear()).catch(() => {});
    await signIn(sp, env('UI_SUPU_TOKEN'));
    await sp.goto(env('REFD_URL') + '/ui/?view=report&from=2026-01-01&to=2026-02-01&group_by=organisation');
    await sp.locator('[data-testid="report-table"]').waitFor();
    const label = await sp.$eval('[data-testid="report-table"] tbody th', c => c.textContent);
    assert.ok(label.startsWith(XSS), 'the organisation name is shown as text');
    const svgLabel = await sp.$eval('[data-chart="accept"] .chart-label', t => t.textContent);
    assert.ok(svgLabel.startsWith('<img'), 'the chart label is text');
    assert.equal(await sp.locator('main img, svg image, svg foreignObject').count(), 0);
    assert.equal(await sp.evaluate(() => window.__xss), 0);
    ok('the organisation name shows as text in the table and the chart');
    clean(ctx);
  });
}
