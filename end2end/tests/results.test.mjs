// The results grid: expected values fixed in place with the keyboard, the
// extracted values of three selected jobs accepted in bulk, and two runs
// compared — each seen to change the verdicts and the counts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, hydrated, shot, email, apiSignUp, apiCreateOrg, api, contextFor, waitUntil, finished } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function demoRun(who) {
  const owner = await apiSignUp(email(who), `${who} Grid`);
  const org = await apiCreateOrg(owner, `Grid ${who} ${Date.now()}`);
  const demo = await api(owner, 'POST', `/api/v1/orgs/${org.id}/demo-project`, {});
  const run = await api(owner, 'POST', `/api/v1/batches/${demo.batch.id}/executions`, { mode: 'test', sample_size: 17, max_retries: 0 });
  await finished(owner, run.id);
  return { owner, org, demo, run };
}

const cell = (row, field) => `[data-testid=jobs] tr:has(th.lead a:text-is("${row}")) [data-testid=gt-${field}]`;

test('an expected value is edited in place with the keyboard and the verdict follows', async () => {
  const { owner, org, run } = await demoRun('kim');
  // Row 17's expected price is deliberately wrong; the page has the right one.
  const jobs = await api(owner, 'GET', `/api/v1/executions/${run.id}/jobs?evaluation=partial`);
  const job17 = jobs.items.find((j) => j.row_index === 17);
  const right = job17.extracted.price;
  const ctx = await contextFor(browser, owner);
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/executions/${run.id}`);
  await hydrated(page);
  await page.waitForSelector('[data-testid=execution-state]:has-text("completed")');
  assert.equal((await page.textContent('[data-testid=count-passed]')).trim(), '15');
  const before = (await page.textContent(cell(17, 'price'))).trim();

  // Esc cancels: nothing changes.
  await page.focus(cell(17, 'price'));
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-testid=gt-editor]');
  await page.keyboard.type('999');
  await page.keyboard.press('Escape');
  await page.waitForSelector('[data-testid=gt-editor]', { state: 'detached' });
  assert.equal((await page.textContent(cell(17, 'price'))).trim(), before);
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'gt-price');

  // Enter edits, Enter saves: the row passes and the counts move.
  await page.keyboard.press('Enter');
  await page.fill('[data-testid=gt-editor]', right);
  await shot(page, '30-grid-editing');
  await page.keyboard.press('Enter');
  await page.waitForSelector(`[data-testid=jobs] tr:has(th.lead a:text-is("17")) .badge:has-text("pass")`);
  await waitUntil(page, () => document.querySelector('[data-testid=count-passed]')?.textContent.trim() === '16');
  assert.equal((await page.textContent(cell(17, 'price'))).trim(), right);

  // Tab saves and moves to the next editable cell.
  await page.focus(cell(16, 'currency'));
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-testid=gt-editor]');
  await page.keyboard.press('Tab');
  await page.waitForSelector('[data-testid=gt-editor]', { state: 'detached' });
  const next = await page.evaluate(() => document.activeElement?.dataset.testid);
  assert.equal(next, 'gt-in_stock');
  await shot(page, '31-grid-after-edit');
  await ctx.close();
});

test('the extracted values of three selected jobs are accepted at once', async () => {
  const { owner, org, demo, run } = await demoRun('lee');
  // Make rows 1, 2 and 3 wrong, as if the spreadsheet had a typo.
  const seqRows = await api(owner, 'GET', `/api/v1/batches/${demo.batch.id}/rows?limit=3`);
  await api(owner, 'POST', `/api/v1/batches/${demo.batch.id}/ground-truth/bulk-edit`, {
    operation: 'set', field: 'price', value: '0.01', row_ids: seqRows.items.map((r) => r.id),
  });
  const ctx = await contextFor(browser, owner);
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/executions/${run.id}`);
  await hydrated(page);
  await waitUntil(page, () => document.querySelector('[data-testid=count-passed]')?.textContent.trim() === '12');
  for (const row of [1, 2, 3]) {
    await page.check(`[data-testid=jobs] tr:has(th.lead a:text-is("${row}")) input[type=checkbox]`);
  }
  assert.equal((await page.textContent('[data-testid=selection-count]')).trim(), '3 selected');
  await page.click('[data-testid=accept-selected]');
  await page.waitForSelector('[data-testid=bulk-confirm]:has-text("Change 3 expected values in 3 rows")');
  assert.equal(await page.locator('[data-testid=bulk-samples] tbody tr').count(), 3);
  await shot(page, '32-accept-preview');
  await page.click('[data-testid=bulk-apply]');
  await page.waitForSelector('[data-testid=bulk-notice]:has-text("3 jobs judged again")');
  await waitUntil(page, () => document.querySelector('[data-testid=count-passed]')?.textContent.trim() === '15');
  await page.waitForSelector(`[data-testid=jobs] tr:has(th.lead a:text-is("2")) .badge:has-text("pass")`);
  await shot(page, '33-accepted');
  // The row's history names who changed it, in the API and on the job page.
  const history = await api(owner, 'GET', `/api/v1/rows/${seqRows.items[1].id}/history`);
  assert.equal(history[0].changed_by, 'lee Grid');
  assert.equal(history[0].before, '0.01');
  await page.click('[data-testid=jobs] a:text-is("2")');
  await page.waitForSelector('[data-testid=row-history] td:has-text("0.01")');
  assert.match(await page.textContent('[data-testid=row-history]'), /lee Grid/);

  // A CSV file of expected values from the batch page: preview, then save.
  await page.goto(`${BASE}/o/${org.slug}/batches/${demo.batch.id}`);
  await hydrated(page);
  await page.setInputFiles('[data-testid=gt-file]', {
    name: 'fixes.csv', mimeType: 'text/csv', buffer: Buffer.from('row,price\n1,0.02\n2,0.03\n'),
  });
  await page.click('button:has-text("Preview file")');
  await page.waitForSelector('[data-testid=paste-confirm]:has-text("Change 2 expected values in 2 rows")');
  await page.click('[data-testid=paste-apply]');
  await page.waitForSelector('[data-testid=paste-notice]:has-text("2 jobs judged again")');
  // The batch's rows show the new values without a reload.
  await page.waitForSelector('table.rows td.gt:text-is("0.02")');
  await shot(page, '36-csv-set');
  await ctx.close();
});

test('two runs of a batch are compared: fixed rows, per-field deltas, the trend', async () => {
  const { owner, org, demo, run } = await demoRun('max');
  // A broken price rule for the second run: every price it finds is
  // missing, so the rows that passed regress.
  await api(owner, 'PATCH', `/api/v1/projects/${demo.project.id}/fields/price`, { rule: { kind: 'css', selector: '#no-such-element' } });
  const second = await api(owner, 'POST', `/api/v1/batches/${demo.batch.id}/executions`, { mode: 'test', sample_size: 17, max_retries: 0 });
  await finished(owner, second.id);
  const ctx = await contextFor(browser, owner);
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/executions/${second.id}`);
  await hydrated(page);
  await page.waitForSelector('[data-testid=compare-form]');
  await page.click('[data-testid=compare-form] button:has-text("Compare")');
  await page.waitForURL(/\/compare\?/);
  await hydrated(page);
  await page.waitForSelector('[data-testid=compare-summary]');
  assert.equal((await page.textContent('[data-testid=fixed-count]')).trim(), '0');
  // 17 rows: 15 passed in the first run; row 13 failed in both; row 17
  // (a wrong expected price) was partial in both, with another value.
  assert.equal((await page.textContent('[data-testid=regressed-count]')).trim(), '15');
  assert.match(await page.textContent('[data-testid=regressed-jobs]'), /price: [0-9.]+ → —/);
  assert.equal(await page.locator('[data-testid=compare-fields] tbody tr').count(), 4);
  // Both runs sampled the same 17 rows.
  assert.match(await page.textContent('[data-testid=compare-rows]'), /Both runs cover the same 17 rows\./);
  // The rule change is version 2: compare names it.
  assert.match(await page.textContent('[data-testid=field-rule-diff]'), /price\s*automatic\s*css #no-such-element/);
  // 15 rows pass only in the first run: far beyond noise.
  assert.match(await page.textContent('[data-testid=compare-significance]'),
    /Beyond noise: 0 rows pass only in B and 15 only in A \(McNemar's exact test, p = 0\.0001\)/);
  await shot(page, '34-compare');
  await page.goto(`${BASE}/o/${org.slug}/batches/${demo.batch.id}`);
  await hydrated(page);
  await page.waitForSelector('[data-testid=trend-chart] polyline');
  assert.equal(await page.locator('[data-testid=trend-table] tbody tr').count(), 2);
  await shot(page, '35-trend');
  await ctx.close();
});

test('a run is scored with precision, recall and F1 with intervals; a field says what an empty expected value means', async () => {
  const { owner, org, demo, run } = await demoRun('eva');
  const ctx = await contextFor(browser, owner, { viewport: { width: 1400, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/executions/${run.id}`);
  await hydrated(page);
  // "Run accuracy 94.1% ± 9.6" and per field accuracy, precision, recall, F1.
  await page.waitForSelector('[data-testid=run-accuracy]');
  assert.match(await page.textContent('[data-testid=run-accuracy]'), /Run accuracy \d+\.\d% ± \d+\.\d/);
  assert.match(await page.textContent('[data-testid=field-accuracy] thead'), /Accuracy.*Precision.*Recall.*F1/s);
  const price = await page.textContent('[data-testid=field-accuracy] tr:has(td strong:text-is("price"))');
  assert.match(price, /\d+\.\d% ± \d+\.\d/);
  await shot(page, '36-run-precision-recall-f1');

  // In the field editor: an empty expected price means the page has none,
  // and "|" separates acceptable values.
  await page.goto(`${BASE}/o/${org.slug}/projects/${demo.project.id}/settings`);
  await hydrated(page);
  const row = page.locator('tr:has(td strong:text-is("price"))');
  await row.locator('summary:has-text("Edit")').click();
  await row.locator('select[name=empty_means]').selectOption('absent');
  await row.locator('input[name=multi_value_separator]').fill('|');
  await shot(page, '37-field-editor-evaluation');
  await row.locator('button:has-text("Save field")').click();
  await page.waitForSelector('tr:has(td strong:text-is("price")) td:has-text("empty = absent")');
  const project = await api(owner, 'GET', `/api/v1/projects/${demo.project.id}`);
  const field = project.fields.find((f) => f.name === 'price');
  assert.equal(field.empty_means, 'absent');
  assert.equal(field.multi_value_separator, '|');
  await ctx.close();
});

test('values extracted elsewhere are imported from the batch page as a judged run', async () => {
  const owner = await apiSignUp(email('imp'), 'Ines Import');
  const org = await apiCreateOrg(owner, `Import ${Date.now()}`);
  const demo = await api(owner, 'POST', `/api/v1/orgs/${org.id}/demo-project`, {});
  const ctx = await contextFor(browser, owner, { viewport: { width: 1400, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/batches/${demo.batch.id}`);
  await hydrated(page);
  const card = page.locator('[data-testid=import-run]');
  await card.waitFor();
  // A column that is no field: refused, naming where.
  await page.setInputFiles('#import-file', { name: 'bad.csv', mimeType: 'text/csv', buffer: Buffer.from('row,colour\n1,red\n') });
  await card.locator('button:has-text("Import as a run")').click();
  await page.waitForSelector('[data-testid=import-error]:has-text("Line 1, column 2")');
  await shot(page, '38-import-refused');
  // Two rows as JSON Lines: a run of agent "imported" opens, already judged.
  const lines = '{"row": 1, "price": "1.00", "currency": "USD"}\n{"row": 2, "error": "blocked by a captcha"}\n';
  await page.setInputFiles('#import-file', { name: 'elsewhere.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(lines) });
  await card.locator('button:has-text("Import as a run")').click();
  await page.waitForURL(/\/executions\/[0-9a-f-]+$/);
  await hydrated(page);
  await page.waitForSelector('[data-testid=execution-state]:has-text("completed")');
  assert.equal((await page.textContent('[data-testid=count-errors]')).trim(), '1');
  await page.waitForSelector('[data-testid=event-feed] li:has-text("Imported \\"elsewhere.jsonl\\": 2 lines")');
  await shot(page, '39-imported-run');
  await ctx.close();
});

test('the grid uses the screen, its counts link to their tabs, columns are chosen, and phones get a card per job', async () => {
  const { owner, org, run } = await demoRun('wide');
  const ctx = await contextFor(browser, owner, { viewport: { width: 1400, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/executions/${run.id}`);
  await hydrated(page);
  await page.waitForSelector('[data-testid=execution-state]:has-text("completed")');
  await page.waitForSelector('[data-testid=jobs] tbody tr');
  // Title, price and verdict are on screen with no sideways scrolling.
  const fit = await page.evaluate(() => {
    const heads = [...document.querySelectorAll('[data-testid=jobs] thead th')];
    const right = (name) => heads.find((h) => h.textContent.trim().startsWith(name))?.getBoundingClientRect().right ?? Infinity;
    return { title: right('title'), price: right('price'), result: right('Result'), scroll: document.documentElement.scrollWidth, width: window.innerWidth };
  });
  assert.ok(fit.scroll <= fit.width, JSON.stringify(fit));
  for (const col of ['title', 'price', 'result']) assert.ok(fit[col] <= fit.width, `${col}: ${JSON.stringify(fit)}`);
  // URLs show their distinctive end.
  assert.match(await page.textContent('[data-testid=jobs] tbody tr:first-child .site-link .path'), /\/demo\/products\/\d+$/);
  await shot(page, '40-grid-1400');

  // Each header count links to the tab holding exactly those jobs.
  const rowsShown = async () => (await page.locator('[data-testid=jobs] tbody th.lead a').allTextContents()).map(Number);
  const listed = async (q) => (await api(owner, 'GET', `/api/v1/executions/${run.id}/jobs?${q}`)).items.map((j) => j.row_index);
  for (const [testid, tab, q] of [['count-failing', 'wrong', 'evaluation=wrong'], ['count-errors', 'failed', 'status=failed'], ['count-passed', 'pass', 'evaluation=pass']]) {
    const n = Number((await page.textContent(`[data-testid=${testid}]`)).trim());
    await page.click(`a.count-link:has([data-testid=${testid}])`);
    await page.waitForURL(new RegExp(`jobs=${tab}`));
    await page.waitForSelector(`nav[aria-label="Filter jobs"] a[aria-current=page][data-tab=${tab}]`);
    const want = await listed(q);
    await waitUntil(page, (k) => document.querySelectorAll('[data-testid=jobs] tbody tr').length === k, want.length);
    assert.deepEqual(await rowsShown(), want, tab);
    assert.equal(want.length, n, `${tab}: the header said ${n}`);
    assert.match(await page.textContent(`nav[aria-label="Filter jobs"] a[data-tab=${tab}] .tab-count`), new RegExp(`^${n}$`));
  }
  // The Errors tab says what went wrong.
  await page.goto(`${BASE}/o/${org.slug}/executions/${run.id}?jobs=failed`);
  await hydrated(page);
  assert.match(await page.textContent('[data-testid=jobs] td.error-cell'), /\w+: .+/);
  await shot(page, '41-grid-errors-tab');

  // Columns: hide Accuracy and put price first; the choice outlives a reload.
  await page.goto(`${BASE}/o/${org.slug}/executions/${run.id}`);
  await hydrated(page);
  await page.click('[data-testid=column-chooser] summary');
  await page.click('[data-testid=column-chooser] input[data-column=accuracy]');
  await page.waitForSelector('[data-testid=jobs] thead th:text-is("Accuracy")', { state: 'detached' });
  for (let i = 0; i < 4; i++) {
    const up = page.locator('[data-testid=column-chooser] button[aria-label="Move price left"]');
    if (await up.isDisabled()) break;
    await up.click();
  }
  await shot(page, '42-grid-columns');
  // The first column after the row number (this page has a failed job, so
  // an Error column comes before the fields).
  const firstField = async () => (await page.locator('[data-testid=jobs] thead th:has-text("extracted / expected")').first().textContent()).trim();
  const firstCol = async () => (await page.locator('[data-testid=jobs] thead th').nth(2).textContent()).trim();
  await waitUntil(page, () => document.querySelectorAll('[data-testid=jobs] thead th')[2]?.textContent.startsWith('price'));
  await new Promise((r) => setTimeout(r, 500));
  await page.reload();
  await hydrated(page);
  await page.waitForSelector('[data-testid=jobs] tbody tr');
  assert.match(await firstField(), /^price/);
  assert.match(await firstCol(), /^price/);
  assert.equal(await page.locator('[data-testid=jobs] thead th:text-is("Accuracy")').count(), 0);
  await ctx.close();

  // A phone: a card per job, nothing wider than the screen.
  const phone = await contextFor(browser, owner, { viewport: { width: 390, height: 844 } });
  const p = await phone.newPage();
  await p.goto(`${BASE}/o/${org.slug}/executions/${run.id}`);
  await hydrated(p);
  await p.waitForSelector('[data-testid=job-cards] li.job-card');
  assert.equal(await p.locator('[data-testid=job-cards] li.job-card').count(), 17);
  assert.equal(await p.locator('[data-testid=jobs]').isVisible(), false);
  const card17 = p.locator('[data-testid=job-cards] li.job-card:has(a:text-is("Row 17"))');
  assert.match(await card17.textContent(), /price: expected .+, extracted .+/);
  const wide = await p.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(wide <= 390, `page is ${wide}px wide`);
  await card17.scrollIntoViewIfNeeded();
  await shot(p, '43-grid-phone');
  await phone.close();

  // One click accepts a failed cell's extracted value; the row stays in
  // its tab (as after any edit) and the header moves.
  const again = await contextFor(browser, owner, { viewport: { width: 1400, height: 900 } });
  const w = await again.newPage();
  await w.goto(`${BASE}/o/${org.slug}/executions/${run.id}?jobs=wrong`);
  await hydrated(w);
  const row17 = '[data-testid=jobs] tr:has(th.lead a:text-is("17"))';
  await w.waitForSelector(`${row17} [data-testid=accept-price]`);
  assert.equal(await w.locator('[data-testid=jobs] [data-testid^=accept-]').count(), 1);
  await w.click(`${row17} [data-testid=accept-price]`);
  await w.waitForSelector(`${row17} .badge:has-text("pass")`);
  await waitUntil(w, () => document.querySelector('[data-testid=count-failing]')?.textContent.trim() === '0');
  assert.equal(await w.locator(`${row17} [data-testid=accept-price]`).count(), 0);
  await shot(w, '44-grid-cell-accepted');
  await again.close();
});
