// A supervisor on a desktop: the overdue and unassigned lists agree with
// the API; a reassign needs a reason and moves the assignment; the report's
// charts show the fixture's known numbers; its filters live in the URL
// (never the token); the CSV download is the table shown.
import { readFileSync } from 'node:fs';
import { withBrowser, context, newPage, clean, shot, axe, api, signIn, ok, env, assert } from './lib.mjs';

const OPEN = ['unassigned', 'offered', 'accepted', 'in_progress', 'on_hold'];

function parseCsv(text) {
  const rows = [];
  let row = [], cell = '', q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') q = false; else cell += c;
    } else if (c === '"') q = true;
    else if (c === ',') { row.push(cell); cell = ''; }
    else if (c === '\r') { /* part of CRLF */ }
    else if (c === '\n') { row.push(cell); rows.push(row); row = []; cell = ''; }
    else cell += c;
  }
  if (cell || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

async function bars(page, chart, group) {
  return page.$$eval(`[data-testid="report-chart"][data-chart="${chart}"] g.chart-row[data-group="${group}"] rect.bucket`,
    rs => rs.map(r => Number(r.getAttribute('data-count'))));
}

export default async function () {
  const TOK = env('UI_SUPU_TOKEN'), UN = env('UI_UNASSIGNED'), TARGET = env('UI_TARGET');
  const ORG = env('UI_ORG'), RA = env('UI_RA'), RB = env('UI_RB');
  await withBrowser(async (browser) => {
    const ctx = await context(browser, { viewport: { width: 1280, height: 900 }, locale: 'en-GB', timezoneId: 'UTC' });
    const page = await newPage(ctx);
    let reassigns = 0;
    page.on('request', r => { if (r.url().endsWith(`/v1/assignments/${UN}/reassign`)) reassigns++; });
    await signIn(page, TOK);   // a pasted token works too
    await page.locator('table[data-testid="overdue-list"]').waitFor();
    await page.locator('table[data-testid="unassigned-list"]').waitFor();
    const shown = async (id) => (await page.$$eval(`[data-testid="${id}-item"]`, rs => rs.map(r => r.dataset.assignmentId))).sort();
    const overdueApi = (await api(TOK, 'GET', '/v1/assignments?overdue=true')).body.items
      .filter(a => OPEN.includes(a.status)).map(a => a.id).sort();
    const unassignedApi = (await api(TOK, 'GET', '/v1/assignments?status=unassigned')).body.items.map(a => a.id).sort();
    assert.deepEqual(await shown('overdue-list'), overdueApi);
    assert.ok(overdueApi.includes(env('UI_A2')) && overdueApi.includes(env('UI_A3')));
    assert.deepEqual(await shown('unassigned-list'), unassignedApi);
    assert.ok(unassignedApi.includes(UN));
    ok(`overview lists what the API lists: ${overdueApi.length} overdue, ${unassignedApi.length} unassigned`);
    await shot(page, 'supervisor-overview');
    await axe(page, 'supervisor overview');

    // Reassign: a reason is required, and nothing is sent without one.
    const row = page.locator(`table[data-testid="unassigned-list"] tr[data-assignment-id="${UN}"]`);
    await row.getByTestId('reassign').click();
    const form = page.locator('tr.reassign-row:not([hidden]) form');
    await form.getByTestId('reassign-worker').selectOption(TARGET);
    await form.getByTestId('reassign-confirm').click();
    await form.locator('.error:not(:empty)').waitFor();
    assert.equal(reassigns, 0, 'a reassign without a reason was sent');
    await form.getByTestId('reassign-reason').fill('Nobody in the region has room; Cholpon covers it this week');
    await shot(page, 'supervisor-reassign');
    await axe(page, 'supervisor reassign form');
    await form.getByTestId('reassign-confirm').click();
    await page.locator(`table[data-testid="unassigned-list"] tr[data-assignment-id="${UN}"]`).waitFor({ state: 'detached' });
    const moved = await api(TOK, 'GET', `/v1/assignments/${UN}`);
    assert.equal(moved.body.status, 'reassigned');
    const next = await api(TOK, 'GET', `/v1/assignments/${moved.body.replaced_by}`);
    assert.equal(next.body.worker_id, TARGET); assert.equal(next.body.status, 'offered');
    ok('reassigned with a reason: the API shows it offered to the chosen worker');

    // The report, by organisation, from a URL (filters in the query).
    await page.goto(env('REFD_URL') + '/ui/?view=report&from=2026-01-01&to=2026-02-01&group_by=organisation');
    await page.locator('[data-testid="report-table"]').waitFor();
    const url = page.url();
    assert.match(url, /[?&]from=2026-01-01&to=2026-02-01&group_by=organisation$/);
    assert.ok(!url.includes(TOK) && !/token/i.test(url), 'the token is in the URL');
    assert.deepEqual(await bars(page, 'accept', ORG), [1, 1, 0, 0, 0]);
    assert.deepEqual(await bars(page, 'first_contact', ORG), [0, 0, 0, 1, 0]);
    const cell = async (i) => page.$eval(`[data-testid="report-table"] tbody tr:first-child > :nth-child(${i})`, c => c.dataset.value);
    // columns: group, offers, assignments, accept (met, on time, missed, rate, median, p90), first contact (same)
    assert.deepEqual([await cell(2), await cell(3)], ['3', '3']);
    assert.deepEqual([await cell(4), await cell(5), await cell(6), await cell(7), await cell(8), await cell(9)],
      ['2', '2', '1', '0.6667', '3900', '6540']);
    assert.deepEqual([await cell(10), await cell(11), await cell(12), await cell(13), await cell(14)],
      ['1', '1', '1', '0.5', '108000']);
    const label = await page.$eval('[data-testid="report-table"] tbody tr:first-child > th', c => c.textContent);
    assert.ok(label.startsWith('<img src=x onerror=alert(1)> Ош НКО'), 'the organisation name as text');
    const points = await page.$$eval('[data-testid="report-chart"][data-chart="weeks"] circle.point',
      cs => cs.map(c => [c.closest('g').dataset.series, c.dataset.week, Number(c.dataset.rate)]));
    assert.deepEqual(points.sort(), [['accept', '2026-01-05T00:00:00Z', 1], ['accept', '2026-01-12T00:00:00Z', 0],
      ['first_contact', '2026-01-05T00:00:00Z', 0.5]].sort());
    ok('charts by organisation: accept [1,1,0,0,0], first contact [0,0,0,1,0], weeks 100%/0% and 50%: the fixture\u2019s numbers');
    await shot(page, 'supervisor-report');
    await axe(page, 'supervisor report');

    // CSV: exactly the table shown.
    const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('csv-download').click()]);
    const csv = readFileSync(await dl.path(), 'utf8').replace(/^\ufeff/, '');
    const table = await page.$$eval('[data-testid="report-table"] tr', trs => trs.map(tr => [...tr.children].map(c => c.textContent)));
    const rows = parseCsv(csv).map(r => r.map(c => c.replace(/^'(?=[=+\-@])/, '')));
    assert.deepEqual(rows, table);
    assert.match(dl.suggestedFilename(), /^follow-up-organisation-2026-01-01-2026-01-31\.csv$/);
    ok(`CSV download: ${rows.length} rows, cell for cell the table shown`);

    // Group by region through the form: the URL follows, the charts too.
    await page.getByTestId('group-by').selectOption('region');
    await page.getByTestId('report-apply').click();
    await page.waitForURL(/group_by=region/);
    await page.locator(`[data-testid="report-chart"][data-chart="accept"] g.chart-row[data-group="${RA}"]`).waitFor();
    assert.deepEqual(await bars(page, 'accept', RA), [1, 1, 0, 0, 0]);
    assert.deepEqual(await bars(page, 'accept', RB), [0, 0, 0, 0, 0]);
    assert.equal(await page.$eval(`[data-chart="accept"] g.chart-row[data-group="${RB}"]`, g => g.dataset.total), '0');
    assert.deepEqual(await bars(page, 'first_contact', RA), [0, 0, 0, 1, 0]);
    ok('charts by region: region A [1,1,0,0,0], region B nothing met');
    // Back and forward through history re-render from the URL.
    await page.goBack();
    await page.waitForURL(/group_by=organisation/);
    await page.locator(`[data-chart="accept"] g.chart-row[data-group="${ORG}"]`).waitFor();
    ok('the browser\u2019s back button returns to the organisation view');
    clean(ctx);
  });
}
