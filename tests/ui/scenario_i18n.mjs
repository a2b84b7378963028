// Languages: a Kyrgyz-first browser gets Kyrgyz, the switch changes it (and
// is remembered), an English browser gets English, one with none of ours
// Russian; dates and numbers in the locale's format, in Asia/Bishkek time
// unless the browser names another zone.
import { withBrowser, context, newPage, clean, signIn, axe, shot, ok, env, assert } from './lib.mjs';

export default async function () {
  await withBrowser(async (browser) => {
    const ky = await context(browser, { viewport: { width: 390, height: 844 }, locale: 'ky-KG', timezoneId: 'UTC' });
    const p = await newPage(ky);
    await p.goto(env('REFD_URL') + '/ui/');
    await p.getByTestId('sign-in').waitFor();
    assert.equal(await p.getAttribute('html', 'lang'), 'ky');
    assert.equal(await p.getByTestId('sign-in').textContent(), 'Кирүү');
    assert.equal(await p.getByTestId('language').inputValue(), 'ky');
    ok('a Kyrgyz-first browser gets the Kyrgyz pages');
    await signIn(p, env('UI_SUPU_TOKEN'));
    await p.locator('#nav a[href="?view=workers"]').waitFor();
    assert.equal(await p.locator('#nav a[href="?view=workers"]').textContent(), 'Кызматкерлер');
    await p.goto(env('REFD_URL') + '/ui/?view=report&from=2026-01-01&to=2026-02-01&group_by=organisation');
    await p.locator('[data-testid="report-table"]').waitFor();
    const h = await p.locator('main h1').textContent();
    assert.equal(h, 'Мөөнөттөр боюнча отчёт');
    // Times: Bishkek (UTC+6) when the browser's zone is bare UTC.
    assert.equal(await p.evaluate(() => window.RFD.i18n.timeZone()), 'Asia/Bishkek');
    assert.match(await p.locator('main .help').first().textContent(), /Asia\/Bishkek/);
    const rate = await p.$eval('[data-testid="report-table"] tbody tr:first-child > :nth-child(7)', c => c.textContent);
    assert.equal(rate, '66,7%', 'Kyrgyz percent format');
    const day = await p.evaluate(() => window.RFD.i18n.fmt.dateTime('2026-01-05T06:30:00Z'));
    assert.equal(day, '2026-ж., 5-янв. 12:30', 'Kyrgyz date in Bishkek time');
    await shot(p, 'supervisor-report-ky-phone');
    await p.setViewportSize({ width: 1280, height: 900 });
    await p.reload();
    await p.locator('[data-testid="report-table"]').waitFor();
    await shot(p, 'supervisor-report-ky');
    await axe(p, 'report in Kyrgyz');
    // The switch.
    await p.getByTestId('language').selectOption('ru');
    await p.locator('main h1', { hasText: 'Отчёт по срокам' }).waitFor();
    assert.equal(await p.getAttribute('html', 'lang'), 'ru');
    await p.getByTestId('language').selectOption('en');
    await p.locator('main h1', { hasText: 'Follow-up report' }).waitFor();
    ok('the language switch turns the page Russian, then English');
    await p.reload();
    await p.locator('main h1', { hasText: 'Follow-up report' }).waitFor();
    ok('the choice is remembered on reload');
    clean(ky);

    const ru = await context(browser, { locale: 'uz-UZ', timezoneId: 'Asia/Tashkent' });
    const q = await newPage(ru);
    await q.goto(env('REFD_URL') + '/ui/');
    assert.equal(await q.getByTestId('sign-in').textContent(), 'Войти');
    assert.equal(await q.evaluate(() => window.RFD.i18n.timeZone()), 'Asia/Tashkent');
    const d = await q.evaluate(() => window.RFD.i18n.fmt.dateTime('2026-01-05T06:30:00Z'));
    assert.match(d, /5 янв\.? 2026.*11:30/, `Russian date in Tashkent time, got ${d}`);
    ok('a browser with none of our languages gets Russian; its own time zone is used');
    const en = await context(browser, { locale: 'en-US', timezoneId: 'UTC' });
    const e = await newPage(en);
    await e.goto(env('REFD_URL') + '/ui/');
    assert.equal(await e.getByTestId('sign-in').textContent(), 'Sign in');
    const de = await e.evaluate(() => window.RFD.i18n.fmt.dateTime('2026-01-05T06:30:00Z'));
    assert.match(de, /5 Jan 2026.*12:30/, `English date in Bishkek time, got ${de}`);
    ok('an English browser gets English; bare UTC shows Bishkek time');
    clean(ru); clean(en);
  });
}
