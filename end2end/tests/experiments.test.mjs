// An experiment from a run page: two versions over the run's kept pages,
// watched to completion live, the matrix read (the better version's
// accuracy marked best, the rows the worse one broke counted), and the
// winner promoted to production with one confirmed click.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, hydrated, shot, email, apiSignUp, apiCreateOrg, api, contextFor, finished } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('an experiment is started from a run page, completes live, and its winner is promoted', async () => {
  const owner = await apiSignUp(email('xena'), 'Xena Trials');
  const org = await apiCreateOrg(owner, `Trials ${Date.now()}`);
  const demo = await api(owner, 'POST', `/api/v1/orgs/${org.id}/demo-project`, {});
  const project = demo.project.id;
  const run = await api(owner, 'POST', `/api/v1/batches/${demo.batch.id}/executions`, { mode: 'test', sample_size: 12, max_retries: 0 });
  await finished(owner, run.id);
  // Version 2 breaks the price rule (and becomes production).
  const p = await api(owner, 'PATCH', `/api/v1/projects/${project}/fields/price`, { rule: { kind: 'css', selector: '.no-such-price' }, note: 'Try a narrower price rule' });
  assert.equal(p.production_version, 2);

  const ctx = await contextFor(browser, owner);
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/executions/${run.id}`);
  await hydrated(page);
  await page.waitForSelector('#experiment');
  await page.selectOption('#experiment-rows', 'first');
  await page.fill('#experiment-size', '12');
  assert.equal(await page.isChecked('#experiment-pages'), true, 'the run kept its pages');
  await page.waitForSelector('#variant-2-version option[value="2"]', { state: 'attached' });
  await page.selectOption('#variant-1-version', '1');
  await page.selectOption('#variant-2-version', '2');
  await page.fill('#experiment-name', 'Price rule trial');
  // A third variant can be added and removed again.
  await page.click('button:text-is("Add a variant")');
  await page.waitForSelector('#variant-3-version');
  await page.click('button[aria-label="Remove variant C"]');
  await page.waitForSelector('#variant-3-version', { state: 'detached' });
  await shot(page, '60-experiment-form');
  await page.click('[data-testid=start-experiment]');

  // The experiment page follows the variants until both are done.
  await page.waitForURL(/\/experiments\//);
  await page.waitForSelector('h1:has-text("Price rule trial")');
  await page.waitForSelector('[data-testid=experiment-state]:has-text("completed")', { timeout: 60000 });
  const rows = page.locator('[data-testid=variant-row]');
  assert.equal(await rows.count(), 2);
  // A (version 1) reads prices; B doesn't: A's accuracy is the best.
  const accuracyA = rows.nth(0).locator('td').nth(2);
  assert.match(await accuracyA.getAttribute('class'), /best/);
  assert.match(await rows.nth(1).textContent(), /production/);
  const pair = await page.textContent('[data-testid=pair-row]');
  assert.match(pair, /A → B/);
  const x = await api(owner, 'GET', page.url().replace(/^.*\/experiments\//, '/api/v1/experiments/'));
  assert.equal(x.variants[0].execution.total, 12);
  assert.ok(x.pairs[0].regressed > 0, JSON.stringify(x.pairs[0]));
  assert.equal(Number(await page.locator('[data-testid=pair-row] td').nth(1).textContent()), x.pairs[0].regressed);
  // The grid puts the rows where they disagree first.
  await page.waitForSelector('[data-testid=grid-row].disagree');
  await shot(page, '61-experiment-matrix');
  // Those rows saved as an evaluation set.
  await page.fill('#disagreement-set-name', 'Price rule rows');
  await page.click('[data-testid=save-disagreements]');
  await page.waitForSelector('[data-testid=set-saved]:has-text("Price rule rows")');

  // Promote A: confirmed, audited, production is version 1 again.
  await page.click('[data-testid=variant-row]:nth-child(1) [data-testid=promote]');
  await page.click('[data-testid=variant-row]:nth-child(1) [data-testid=confirm-promote]');
  await page.waitForSelector('[data-testid=variant-row]:nth-child(1) .badge:has-text("production")');
  const after = await api(owner, 'GET', `/api/v1/projects/${project}`);
  assert.equal(after.production_version, 1);
  const log = await api(owner, 'GET', `/api/v1/orgs/${org.id}/audit-log?action=experiment.promote`);
  assert.equal(log.items.length, 1);
  // A variant's run page leads back to the experiment.
  await page.click('[data-testid=variant-row]:nth-child(2) th a');
  await page.waitForSelector('[data-testid=experiment-of] a');
  await page.click('[data-testid=experiment-of] a');
  await page.waitForSelector('h1:has-text("Price rule trial")');
  await ctx.close();
});
