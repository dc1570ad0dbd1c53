// Projects and batches through the real UI: a member uploads a CSV in the
// browser, sees the preview and the detected schema, corrects a column's
// type, confirms, and lands on the batch; a bad file is explained with its
// line and column before anything is uploaded; a viewer gets no upload
// control; the instruction history shows a side-by-side diff.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, hydrated, shot, email, apiSignUp, apiCreateOrg, api, apiJoin, contextFor } from './helpers.mjs';

let browser;
let owner;
let org;
let project;
before(async () => {
  browser = await launch();
  owner = await apiSignUp(email('owner'), 'Owen Owner');
  org = await apiCreateOrg(owner, `Batches ${Date.now()}`);
  project = await api(owner, 'POST', `/api/v1/orgs/${org.id}/projects`, {
    name: 'Product prices',
    description: 'Prices and stock of the demo shop',
    instructions: 'Find the product price.\nIgnore shipping costs.',
  });
});
after(async () => { await browser?.close(); });

const CSV = [
  'url,name,sku,gt_price,gt_in_stock',
  'https://shop.example.com/p/1,Lamp,1001,19.99,yes',
  'https://shop.example.com/p/2,"Chair, oak",1002,45.00,no',
  'shop.example.com/p/3,Desk,1003,120.50,',
].join('\n') + '\n';

test('a member uploads a CSV, corrects a type and sees the batch', async () => {
  const member = await apiJoin(owner, org.id, 'mia', 'member');
  const ctx = await contextFor(browser, member);
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/projects/${project.id}`);
  await hydrated(page);
  await page.waitForSelector('text=No batches yet.');
  await shot(page, '10-project-empty');
  await page.click('text=Upload a batch');
  await page.waitForURL(/\/upload$/);
  await hydrated(page);
  await shot(page, '11-upload-empty');

  await page.setInputFiles('#csv-file', { name: 'spring-sites.csv', mimeType: 'text/csv', buffer: Buffer.from(CSV) });
  const preview = page.locator('[data-testid=preview]');
  await preview.waitFor();
  // The schema: the URL column, inputs, and expected values by field.
  await preview.locator('text=expected price').waitFor();
  assert.equal(await page.inputValue('select[data-column="gt_price"]'), 'number');
  assert.equal(await page.inputValue('select[data-column="sku"]'), 'number');
  assert.ok(await page.isChecked('input[name=url-column][value=url]'));
  // Ten-row preview of what was read (three rows here), with file lines.
  assert.equal(await preview.locator('table.preview tbody tr').count(), 3);
  await preview.locator('table.preview >> text=Chair, oak').waitFor();
  assert.equal(await page.inputValue('#batch-name'), 'spring-sites');
  await shot(page, '12-upload-preview');

  // SKUs are codes, not numbers.
  await page.selectOption('select[data-column="sku"]', 'text');
  await page.fill('#batch-name', 'Spring sites');
  await page.click('button:has-text("Create batch")');
  await page.waitForURL(/\/batches\/[0-9a-f-]+$/);
  await hydrated(page);
  await page.waitForSelector('h1:has-text("Spring sites")');
  assert.equal((await page.textContent('[data-testid=row-count]')).trim(), '3');
  await page.waitForSelector('td:has-text("https://shop.example.com/p/3")');
  await page.waitForSelector('text=spring-sites.csv');
  await shot(page, '13-batch');

  const batchId = new URL(page.url()).pathname.split('/').pop();
  const batch = await api(member, 'GET', `/api/v1/batches/${batchId}`);
  const sku = batch.columns.find((c) => c.name === 'sku');
  assert.deepEqual([sku.type, sku.detected_type], ['text', 'number']);
  assert.deepEqual(batch.gt_coverage, { price: 3, in_stock: 2 });
  await ctx.close();
});

test('a malformed file is explained with its line and column before upload', async () => {
  const ctx = await contextFor(browser, owner);
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/projects/${project.id}/upload`);
  await hydrated(page);
  const bad = 'url,name,gt_price\nhttps://a.example.com,A,1\nhttps://b.example.com,B,2,extra\n';
  await page.setInputFiles('#csv-file', { name: 'bad.csv', mimeType: 'text/csv', buffer: Buffer.from(bad) });
  const problem = page.locator('[data-testid=preview-problem]');
  await problem.waitFor();
  const text = await problem.textContent();
  assert.match(text, /Line 3, column 4/);
  assert.match(text, /CSV_FIELD_COUNT/);
  await shot(page, '14-upload-problem');
  // Uploading anyway is refused the same way, and nothing is created.
  await page.click('button:has-text("Create batch")');
  await page.locator('[data-testid=upload-error]').waitFor();
  assert.match(await page.textContent('[data-testid=upload-error]'), /Line 3, column 4/);
  const list = await api(owner, 'GET', `/api/v1/projects/${project.id}/batches`);
  assert.ok(list.items.every((b) => b.name !== 'bad'));
  await ctx.close();
});

test('a viewer sees batches but no upload control', async () => {
  const viewer = await apiJoin(owner, org.id, 'vera', 'viewer');
  const ctx = await contextFor(browser, viewer);
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/projects/${project.id}`);
  await hydrated(page);
  await page.waitForSelector('h1:has-text("Product prices")');
  assert.equal(await page.locator('text=Upload a batch').count(), 0);
  await page.goto(`${BASE}/o/${org.slug}/projects/${project.id}/upload`);
  await hydrated(page);
  await page.waitForSelector('text=Viewers can read batches but not upload them');
  assert.equal(await page.locator('#csv-file').count(), 0);
  await ctx.close();
});

test('saving instructions makes a version and the history diffs two', async () => {
  const ctx = await contextFor(browser, owner);
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/projects/${project.id}/instructions`);
  await hydrated(page);
  await page.fill('#instructions', 'Find the sale price.\nIgnore shipping costs.\nAnswer in USD.');
  await page.fill('#note', 'sale prices, USD');
  await page.click('button:has-text("Save as a new version")');
  await page.waitForSelector('text=Saved as version 2');
  await page.goto(`${BASE}/o/${org.slug}/projects/${project.id}/history?a=1&b=2`);
  await hydrated(page);
  await page.waitForSelector('text=v1 → v2: 2 added, 1 removed');
  assert.equal(await page.locator('table.diff td.add').count(), 2);
  assert.equal(await page.locator('table.diff td.del').count(), 1);
  await shot(page, '15-history-diff');
  await page.goto(`${BASE}/o/${org.slug}/projects/${project.id}/settings`);
  await hydrated(page);
  await page.waitForSelector('td:has-text("price")');
  await shot(page, '16-settings');
  // A new extraction rule is a version of its own; the history shows it.
  const changed = await api(owner, 'PATCH', `/api/v1/projects/${project.id}/fields/price`, {
    rule: { kind: 'css', selector: '.sale-price' },
  });
  assert.equal(changed.latest_version, 3);
  await page.goto(`${BASE}/o/${org.slug}/projects/${project.id}/history?a=2&b=3`);
  await hydrated(page);
  const rule = page.locator('[data-testid=field-rule-diff] tbody tr');
  await rule.first().waitFor();
  assert.match(await rule.first().textContent(), /price.*automatic.*\.sale-price/is);
  await page.waitForSelector('text=v2 → v3: 0 added, 0 removed (identical)');
  await page.waitForSelector('.version-parts .badge:has-text("field rules")');
  await shot(page, '16b-history-rule-diff');
  await page.goto(`${BASE}/o/${org.slug}/projects`);
  await hydrated(page);
  await page.waitForSelector('a:has-text("Product prices")');
  await shot(page, '17-projects');
  await ctx.close();
});

test('loading the demo project opens it with its 200-product batch', async () => {
  const fresh = await apiSignUp(email('dana'), 'Dana Demo');
  const demoOrg = await apiCreateOrg(fresh, `Demo ${Date.now()}`);
  const ctx = await contextFor(browser, fresh);
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${demoOrg.slug}/projects`);
  await hydrated(page);
  await page.waitForSelector('text=No projects yet');
  await shot(page, '18-projects-empty');
  await page.click('button:has-text("Load the demo project")');
  await page.waitForURL(/\/projects\/[0-9a-f-]+$/);
  await page.waitForSelector('h1:has-text("Demo shop")');
  await page.waitForSelector('a:has-text("200 demo products")');
  await shot(page, '19-demo-project');
  await ctx.close();
});
