// A worker on a phone (390x844) signs in with a code its supervisor issued on
// the supervisor's page, then inbox -> accept -> contact made -> complete,
// each step confirmed through the API; the contact appears only once the
// worker holds the assignment; an action whose answer is lost is retried
// without being done twice; sign-out revokes the token; the code works once.
import { withBrowser, context, newPage, clean, shot, axe, api, signIn, noSideScroll, touchTargets, ok, env, assert } from './lib.mjs';

export default async function () {
  const SUP = env('UI_SUP_TOKEN'), W = env('UI_WORKER_ID'), ASG = env('UI_ASG'), PHONE = env('UI_PHONE');
  await withBrowser(async (browser) => {
    // The supervisor issues a code on its page.
    const sctx = await context(browser, { viewport: { width: 1280, height: 900 }, locale: 'en-GB' });
    const sp = await newPage(sctx);
    await signIn(sp, SUP);
    await sp.locator('#nav a[href="?view=workers"]').click();
    const issue = sp.locator(`[data-testid="issue-code"][data-worker-id="${W}"]`);
    await issue.click();
    const codeEl = sp.locator(`tr[data-worker-id="${W}"] [data-testid="sign-in-code"]`);
    await codeEl.waitFor();
    const code = (await codeEl.textContent()).trim();
    assert.match(code, /^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
    ok(`supervisor issued a sign-in code on its page (${code.length} characters shown)`);
    await shot(sp, 'supervisor-workers');
    await axe(sp, 'supervisor workers page');
    clean(sctx);

    // The worker, on a phone, types it (in lower case, without the dash).
    const ctx = await context(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true,
      deviceScaleFactor: 2, locale: 'ru-RU' });
    const page = await newPage(ctx);
    await page.goto(env('REFD_URL') + '/ui/');
    await axe(page, 'sign-in page');
    await shot(page, 'sign-in');
    await page.getByTestId('token-input').fill(code.replace('-', '').toLowerCase());
    await page.getByTestId('sign-in').click();
    const item = page.locator(`[data-testid="inbox"] [data-testid="inbox-item"][data-assignment-id="${ASG}"]`);
    await item.waitFor();
    ok('signed in with the code: the offer is in the inbox');
    assert.equal(await page.locator('a[href^="tel:"]').count(), 0, 'contact shown before acceptance');
    assert.equal(await page.evaluate(() => location.href.includes('rfd_') || location.href.includes('token')), false);
    await noSideScroll(page, 'inbox');
    await touchTargets(page, 'inbox');
    ok('inbox: no sideways scrolling at 390 px, touch targets of 44 px or more, no contact shown');
    await shot(page, 'worker-inbox');
    await axe(page, 'worker inbox');
    const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('refd.session')).token);
    assert.ok(token && token.length > 40, 'a session token in sessionStorage');

    // Accept, slowly: the button shows that it is pending.
    let release;
    const held = new Promise(r => { release = r; });
    await page.route(`**/v1/assignments/${ASG}/accept`, async (route) => { await held; await route.continue(); });
    const acc = item.getByTestId('accept');
    await acc.click();
    await page.waitForFunction((id) => {
      const b = document.querySelector(`[data-assignment-id="${id}"] [data-testid="accept"]`);
      return b && b.disabled && b.getAttribute('aria-busy') === 'true';
    }, ASG);
    ok('accept shows its pending state while the request is under way');
    release();
    await page.locator(`[data-testid="mine-item"][data-assignment-id="${ASG}"]`).waitFor();
    await page.unroute(`**/v1/assignments/${ASG}/accept`);
    let r = await api(SUP, 'GET', `/v1/assignments/${ASG}`);
    assert.equal(r.status, 200); assert.equal(r.body.status, 'accepted');
    ok('accepted: the API says accepted');

    // The assignment: now the contact is shown, with a tap-to-call link.
    await page.locator(`[data-testid="mine-item"][data-assignment-id="${ASG}"] a.item-title`).click();
    const call = page.getByTestId('call');
    await call.waitFor();
    assert.equal(await call.getAttribute('href'), 'tel:' + PHONE);
    ok('the assignment shows the client\u2019s phone as a tap-to-call link once accepted');
    await noSideScroll(page, 'assignment');
    await touchTargets(page, 'assignment');
    await shot(page, 'worker-assignment');
    await axe(page, 'worker assignment page');

    // Contact made, with the first answer lost on the way back: the retry
    // reads the assignment, sees the contact recorded, and sends nothing.
    let posts = 0;
    await page.route(`**/v1/assignments/${ASG}/events`, async (route) => {
      posts++;
      if (posts === 1) { await route.fetch(); await route.abort('connectionreset'); return; }
      await route.continue();
    });
    await page.getByTestId('contact-made').click();
    await page.getByTestId('retry').waitFor();
    ok('a lost answer shows an error with a retry');
    await page.getByTestId('retry').click();
    await page.locator('.badge-in_progress').first().waitFor();
    assert.equal(posts, 1, 'the retry sent the event again');
    await page.unroute(`**/v1/assignments/${ASG}/events`);
    r = await api(SUP, 'GET', `/v1/assignments/${ASG}`);
    assert.equal(r.body.status, 'in_progress'); assert.ok(r.body.first_contact_at);
    ok('contact made: the API says in_progress with first_contact_at, and the retry did not send it twice');

    // Complete with an outcome.
    await page.getByTestId('complete').click();
    await page.getByTestId('complete-outcome').selectOption('linked_to_services');
    await page.getByTestId('complete-detail').fill('Linked to the needle and syringe programme');
    await page.getByTestId('complete-confirm').click();
    await page.locator('.badge-completed').first().waitFor();
    r = await api(SUP, 'GET', `/v1/assignments/${ASG}`);
    assert.equal(r.body.status, 'completed'); assert.equal(r.body.outcome, 'linked_to_services');
    ok('completed: the API says completed, outcome linked_to_services');
    await shot(page, 'worker-completed');

    // Sign out: the token is revoked and forgotten.
    assert.equal((await api(token, 'GET', '/v1/me')).status, 200);
    await page.getByTestId('sign-out').click();
    await page.getByTestId('token-input').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('refd.session')), null);
    assert.equal((await api(token, 'GET', '/v1/me')).status, 401);
    assert.equal((await api(token, 'GET', '/v1/assignments?status=offered')).status, 401);
    ok('signed out: the page forgot the token and the token answers 401');

    // The code was spent.
    await page.getByTestId('token-input').fill(code);
    await page.getByTestId('sign-in').click();
    await page.locator('#sign-in-error:not(:empty)').waitFor();
    assert.equal((await api(null, 'POST', '/v1/sign-in', { code })).status, 401);
    ok('the code works once: a second sign-in with it fails');
    clean(ctx);
  });
}
