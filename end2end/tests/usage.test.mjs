// The usage page: this month's figures after a run, the breakdown and its
// CSV, and an owner setting a budget through the form, after which every
// page of the organization carries the budget banner.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, hydrated, shot, email, apiSignUp, apiCreateOrg, api, contextFor, finished } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('usage shows what a run cost and a budget set in the form warns the whole organization', async () => {
  const owner = await apiSignUp(email('usa'), 'Uma Sage');
  const org = await apiCreateOrg(owner, `Usage ${Date.now()}`);
  const demo = await api(owner, 'POST', `/api/v1/orgs/${org.id}/demo-project`, {});
  await api(owner, 'PATCH', `/api/v1/projects/${demo.project.id}/agent`, { price_per_job: 0.002 });
  const run = await api(owner, 'POST', `/api/v1/batches/${demo.batch.id}/executions`, { mode: 'test', sample_size: 20, max_retries: 0 });
  await finished(owner, run.id);

  const ctx = await contextFor(browser, owner);
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/usage?group_by=project`);
  await hydrated(page);
  assert.equal((await page.textContent('[data-testid=month-cost]')).trim(), '0.04');
  assert.equal((await page.textContent('[data-testid=usage-total-cost]')).trim(), '0.04');
  assert.match(await page.textContent('[data-testid=usage-table] tbody'), /Demo shop/);
  assert.match(await page.getAttribute('[data-testid=usage-download]', 'href'), /usage\/export\?from=.*group_by=project/);
  assert.match(await page.textContent('[data-testid=budget-status]'), /No monthly budget/);

  // 0.04 of 0.05 is 80%: both alerts at once, and the banner.
  await page.fill('#budget-monthly', '0.05');
  await page.click('text=Save budget');
  await page.waitForSelector('[data-testid=budget-status]:has-text("spent (80%)")');
  assert.match(await page.textContent('main'), /Alerts sent this month: 50%, 80%/);
  await page.goto(`${BASE}/o/${org.slug}/projects`);
  await hydrated(page);
  assert.match(await page.textContent('[data-testid=budget-banner]'), /used 80% or more of this month's budget/);
  await page.goto(`${BASE}/o/${org.slug}/usage`);
  await hydrated(page);
  await shot(page, '95-usage');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, '96-usage-phone');
  await ctx.close();
});
