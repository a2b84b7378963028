// check_static.mjs - what can be checked of ui/ without a browser:
// - the three catalogues have the same keys, none empty, and Russian and
//   Kyrgyz texts are not left in English;
// - every key the scripts ask for (t('...'), and the families built from a
//   prefix: status., need., outcome., ...) exists for every value it takes;
// - no script writes markup (innerHTML, outerHTML, insertAdjacentHTML,
//   document.write), evaluates text (eval, new Function, string timers), or
//   names another origin; no inline style or script in the HTML.
import { readFileSync, readdirSync } from 'node:fs';
import vm from 'node:vm';
import assert from 'node:assert/strict';

const dir = new URL('../../ui/', import.meta.url);
const files = readdirSync(dir);
const src = Object.fromEntries(files.map(f => [f, readFileSync(new URL(f, dir), 'utf8')]));

const win = {};
vm.runInNewContext(src['i18n.js'], { window: win });
const C = win.RFD.i18n.catalogues;
const langs = ['en', 'ru', 'ky'];
for (const l of langs) {
  for (const k of Object.keys(C.en)) assert.ok(C[l][k], `${l} lacks ${k}`);
  for (const k of Object.keys(C[l])) assert.ok(k in C.en, `${l} has ${k}, English does not`);
}
// Same text as English is allowed only where it is a name, a symbol or a pattern.
const same = new Set(['report.period', 'unit.s']);
for (const l of ['ru', 'ky']) {
  for (const k of Object.keys(C.en)) {
    if (same.has(k) || !/[a-z]{3}/i.test(C.en[k].replace(/\{\w+\}/g, ''))) continue;
    assert.notEqual(C[l][k], C.en[k], `${l} ${k} is still English`);
    if (k !== 'bucket.lt')   // Kyrgyz writes "< 1 саат": the unit carries the language
      assert.ok(/[а-яёөүң]/i.test(C[l][k]), `${l} ${k} has no Cyrillic: ${C[l][k]}`);
  }
}
// Kyrgyz letters that Russian lacks appear in the Kyrgyz catalogue (a check
// that it is not Russian under another name).
assert.ok(Object.values(C.ky).join(' ').match(/[өүң]/g).length > 50);

const js = files.filter(f => f.endsWith('.js')).map(f => src[f]).join('\n');
const used = new Set([...js.matchAll(/\bt\('([a-z_]+\.[a-z_.]+|[a-z_]+)'/g)].map(m => m[1]));
for (const k of used) assert.ok(k in C.en, `the scripts use ${k}, no catalogue has it`);
const families = {
  'status.': ['unassigned', 'offered', 'accepted', 'in_progress', 'on_hold', 'completed', 'failed', 'declined',
    'expired', 'cancelled', 'reassigned'],
  'need.': ['harm_reduction', 'legal_support'], 'urgency.': ['normal', 'urgent'],
  'outcome.': ['linked_to_services', 'engaged', 'declined_services', 'other'],
  'fail.': ['lost_contact', 'client_declined', 'detained', 'other'],
  'decline.': ['no_capacity', 'outside_area', 'language', 'conflict_of_interest', 'other'],
  'group.': ['organisation', 'region', 'office', 'worker', 'need'],
  'metric.': ['met', 'on_time', 'missed', 'on_time_rate', 'median_seconds', 'p90_seconds'],
  'sec.': ['accept', 'first_contact'], 'gender.': ['f', 'm', 'x'], 'unit.': ['d', 'h', 'min', 's'],
  'action.': ['complete_confirm', 'fail_confirm']
};
for (const [p, vals] of Object.entries(families))
  for (const v of vals) assert.ok(C.en[p + v], `missing ${p}${v}`);
console.log(`  ok catalogues: ${Object.keys(C.en).length} keys in each of ${langs.join(', ')}; ${used.size} used literally`);

for (const [f, text] of Object.entries(src)) {
  if (!f.endsWith('.js')) continue;
  for (const bad of [/\.innerHTML\b/, /\.outerHTML\b/, /insertAdjacentHTML/, /document\.write/, /\beval\s*\(/,
    /new Function\b/, /setTimeout\(\s*['"`]/, /setInterval\(\s*['"`]/, /\.setAttribute\(\s*['"]on/, /\.style\.cssText/])
    assert.ok(!bad.test(text), `${f}: ${bad}`);
}
for (const [f, text] of Object.entries(src)) {
  const urls = [...text.matchAll(/https?:\/\/[^\s'"`)<>]+/g)].map(m => m[0])
    .filter(u => u !== 'http://www.w3.org/2000/svg');
  assert.deepEqual(urls, [], `${f} names another origin`);
}
const html = src['index.html'];
assert.ok(!/<style|\sstyle=|<script(?![^>]*\ssrc=)/.test(html), 'inline style or script in index.html');
assert.ok(!/\son[a-z]+=/.test(html), 'inline event handler in index.html');
console.log('  ok scripts write no markup, evaluate no text, name no other origin; the HTML has nothing inline');
