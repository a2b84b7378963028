// The worker's other actions, on a phone: decline with a reason code (the
// offer leaves the inbox), contact attempt, hold and resume, and close
// without result with a reason; each confirmed through the API. Then a
// token revoked elsewhere: the next 401 returns the page to sign-in.
import { withBrowser, context, newPage, clean, api, signIn, ok, env, assert, shot } from './lib.mjs';

export default async function () {
  const TOK = env('UI_WM_TOKEN'), D = env('UI_WM_DECLINE'), F = env('UI_WM_FAIL'), SUP = env('UI_SUPU_TOKEN');
  await withBrowser(async (browser) => {
    const ctx = await context(browser, { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, locale: 'en-GB' });
    const page = await newPage(ctx);
    await signIn(page, TOK);
    const item = page.locator(`[data-testid="inbox-item"][data-assignment-id="${D}"]`);
    await item.getByTestId('decline').click();
    await item.getByTestId('decline-reason').selectOption('outside_area');
    await shot(page, 'worker-decline');
    await item.getByTestId('decline-confirm').click();
    await item.waitFor({ state: 'detached' });
    // Nobody else serves the region: the assignment goes back to unassigned.
    let r = await api(SUP, 'GET', `/v1/assignments/${D}`);
    assert.equal(r.body.status, 'unassigned'); assert.equal(r.body.worker_id, null);
    assert.equal((await api(TOK, 'GET', `/v1/assignments/${D}`)).status, 404);
    ok('declined with a reason code: the offer left the inbox and the worker, the API says unassigned');

    const f = page.locator(`[data-testid="inbox-item"][data-assignment-id="${F}"]`);
    await f.getByTestId('accept').click();
    await page.locator(`[data-testid="mine-item"][data-assignment-id="${F}"] a.item-title`).click();
    await page.getByTestId('contact-attempt').click();
    await page.getByTestId('contact-made').waitFor();
    await page.getByTestId('contact-made').click();
    await page.locator('.badge-in_progress').first().waitFor();
    await page.getByTestId('hold').click();
    await page.getByTestId('resume').click();
    await page.locator('.badge-in_progress').first().waitFor();
    r = await api(SUP, 'GET', `/v1/assignments/${F}`);
    assert.equal(r.body.status, 'in_progress');
    ok('contact attempt, contact made, hold, resume: back in contact');
    await page.getByTestId('fail').click();
    await page.getByTestId('fail-reason').selectOption('lost_contact');
    await page.getByTestId('fail-confirm').click();
    await page.locator('.badge-failed').first().waitFor();
    r = await api(SUP, 'GET', `/v1/assignments/${F}`);
    assert.equal(r.body.status, 'failed');   // the reason code: checked in the database (ui.bats)
    ok('closed without result, reason lost_contact: the API says failed');

    // The token stops working elsewhere (revoked): the next request's 401
    // brings the page back to sign-in, saying why, and forgets the token.
    const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('refd.session')).token);
    assert.equal((await api(token, 'POST', '/v1/sign-out')).status, 204);
    await page.locator('#nav a[href="?view=inbox"]').click();
    await page.getByTestId('token-input').waitFor();
    assert.match(await page.locator('main .note').first().textContent(), /session has ended/);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('refd.session')), null);
    assert.ok(!page.url().includes('view='), 'the URL still names a page');
    ok('a 401 returns to the sign-in page and forgets the token');
    clean(ctx);
  });
}
