// Exporting a run from its page: choose the format and the columns, limit
// it to the grid's tab, watch it finish, download the file and find it in
// the batch's export history.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { BASE, launch, hydrated, shot, email, apiSignUp, apiCreateOrg, api, contextFor, finished } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a run is exported from its page and downloaded again from the batch', async () => {
  const owner = await apiSignUp(email('exa'), 'Exa Porter');
  const org = await apiCreateOrg(owner, `Export ${Date.now()}`);
  const demo = await api(owner, 'POST', `/api/v1/orgs/${org.id}/demo-project`, {});
  const run = await api(owner, 'POST', `/api/v1/batches/${demo.batch.id}/executions`, { mode: 'test', sample_size: 34, max_retries: 0 });
  await finished(owner, run.id);

  const ctx = await contextFor(browser, owner, { acceptDownloads: true });
  const page = await ctx.newPage();
  // The "With wrong fields" tab: rows 17 and 34 (their expected prices are wrong).
  await page.goto(`${BASE}/o/${org.slug}/executions/${run.id}?jobs=wrong`);
  await hydrated(page);
  await page.waitForSelector('text=Only the jobs of the “With wrong fields” tab');
  // Fewer columns: drop the error ones.
  await page.click('.export-columns summary');
  await page.uncheck('.column-choices label:has(code:text-is("error")) input');
  await page.uncheck('.column-choices label:has(code:text-is("error_class")) input');
  await shot(page, '40-export-card');
  await page.click('[data-testid=export-start]');
  await page.waitForSelector('[data-testid=export-ready]');
  assert.match(await page.textContent('[data-testid=export-ready]'), /2 rows exported/);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('[data-testid=export-download]'),
  ]);
  const csv = fs.readFileSync(await download.path(), 'utf8').trim().split('\r\n');
  assert.equal(csv.length, 3, csv.join('\n'));
  const header = csv[0].split(',');
  assert.ok(header.includes('gt_price') && header.includes('price_match'), header.join(','));
  assert.ok(!header.includes('error'), header.join(','));
  assert.deepEqual(csv.slice(1).map((l) => l.split(',')[0]), ['17', '34']);
  await shot(page, '41-export-ready');

  // The batch lists it, with who, the filter and a download.
  await page.goto(`${BASE}/o/${org.slug}/batches/${demo.batch.id}`);
  await hydrated(page);
  const row = page.locator('[data-testid=export-history] tbody tr').first();
  await row.waitFor();
  const text = await row.textContent();
  assert.match(text, /Exa Porter/);
  assert.match(text, /evaluation=wrong/);
  assert.match(text, /CSV/);
  const [again] = await Promise.all([
    page.waitForEvent('download'),
    row.locator('a:has-text("Download")').click(),
  ]);
  assert.equal(fs.readFileSync(await again.path(), 'utf8').trim().split('\r\n').length, 3);
  await shot(page, '42-export-history');
  await ctx.close();
});
