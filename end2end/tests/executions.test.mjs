// A run through the real UI: load the demo project, start a test run of
// eight rows from the batch page (with its cost estimate), and watch the
// execution page reach "completed" without reloading.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, hydrated, shot, email, apiSignUp, apiCreateOrg, api, contextFor, finished } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a member starts a test run and watches it complete', async () => {
  const owner = await apiSignUp(email('rita'), 'Rita Runner');
  const org = await apiCreateOrg(owner, `Runs ${Date.now()}`);
  const demo = await api(owner, 'POST', `/api/v1/orgs/${org.id}/demo-project`, {});
  await api(owner, 'PATCH', `/api/v1/projects/${demo.project.id}/agent`, { price_per_job: 0.01 });
  const ctx = await contextFor(browser, owner);
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/batches/${demo.batch.id}`);
  await hydrated(page);
  await page.waitForSelector('text=No runs yet');
  await page.fill('#sample_size', '8');
  await page.waitForSelector('[data-testid=estimate]:has-text("8 jobs × 0.01 = 0.08")');
  await shot(page, '20-batch-run-form');
  await page.click('button:has-text("Start run")');
  await page.waitForURL(/\/executions\/[0-9a-f-]+$/);
  await hydrated(page);
  // The page polls while the run is active: no reload needed.
  await page.waitForSelector('[data-testid=execution-state]:has-text("completed")', { timeout: 30000 });
  assert.equal((await page.textContent('[data-testid=count-completed]')).trim(), '8');
  assert.equal((await page.textContent('[data-testid=count-errors]')).trim(), '0');
  await shot(page, '21-execution-completed');
  // Every job was judged against the batch's expected values.
  assert.equal((await page.textContent('[data-testid=count-passed]')).trim(), '8');
  await page.waitForSelector('[data-testid=field-accuracy] td:has-text("price")');
  await page.click('[data-testid=jobs] a:text-is("3")');
  await page.waitForURL(/\/jobs\/\d+$/);
  await hydrated(page);
  await page.waitForSelector('[data-testid=job-verdict]:has-text("pass")');
  assert.equal(await page.locator('[data-testid=job-fields] tbody tr').count(), 4);
  assert.match(await page.textContent('.attempt'), /Fetching the page/);
  await shot(page, '21b-job');
  // Step to the neighbouring jobs of the run from the job page.
  await page.click('[data-testid=next-job]');
  await page.waitForSelector('h1:text-is("Row 4")');
  await page.click('[data-testid=previous-job]');
  await page.waitForSelector('h1:text-is("Row 3")');
  await page.goto(`${BASE}/o/${org.slug}/batches/${demo.batch.id}`);
  await hydrated(page);
  await page.waitForSelector('td:has-text("8 / 8")');
  await ctx.close();
});

test('a run with the remote agent, then its failed job rerun from the page', async () => {
  const owner = await apiSignUp(email('remo'), 'Remo Rerun');
  const org = await apiCreateOrg(owner, `Reruns ${Date.now()}`);
  const demo = await api(owner, 'POST', `/api/v1/orgs/${org.id}/demo-project`, {});
  const ctx = await contextFor(browser, owner);
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/batches/${demo.batch.id}`);
  await hydrated(page);
  await page.fill('#sample_size', '15');
  // The demo project comes with the demo agent service as its remote agent.
  await page.selectOption('#run-agent', 'remote');
  await page.fill('#run-retries', '0');
  await page.click('button:has-text("Start run")');
  await page.waitForURL(/\/executions\/[0-9a-f-]+$/);
  const first = page.url();
  await hydrated(page);
  await page.waitForSelector('[data-testid=execution-state]:has-text("completed")', { timeout: 30000 });
  assert.match(await page.textContent('main'), /remote agent/);
  // Product 13 does not exist: one job failed, and can run again.
  assert.equal((await page.textContent('[data-testid=count-errors]')).trim(), '1');
  await shot(page, '22-execution-rerun-offer');
  // The failed job, from the Errors filter, says what to do.
  await page.click('nav[aria-label="Filter jobs"] a:has-text("Errors")');
  await page.waitForSelector('[data-testid=jobs] a:text-is("13")');
  await page.click('[data-testid=jobs] a:text-is("13")');
  await page.waitForSelector('[data-testid=suggestion]:has-text("check the URL")');
  await page.goBack();
  await hydrated(page);
  await page.click('[data-testid=rerun-failed]');
  await page.waitForURL((u) => u.toString() !== first && /\/executions\/[0-9a-f-]+$/.test(u.toString()));
  await hydrated(page);
  await shot(page, '23a-after-rerun-click');
  await page.waitForSelector('[data-testid=rerun-of]:has-text("Rerun of Test run v1")');
  await page.waitForSelector('[data-testid=execution-state]:has-text("completed")', { timeout: 30000 });
  assert.match(await page.textContent('main'), /0 of 1 jobs|1 of 1 jobs/);
  await shot(page, '23-execution-rerun');
  await ctx.close();
});

test('a wrong expected value is fixed from the job page and the row is judged again', async () => {
  const owner = await apiSignUp(email('gina'), 'Gina Truth');
  const org = await apiCreateOrg(owner, `Truth ${Date.now()}`);
  const demo = await api(owner, 'POST', `/api/v1/orgs/${org.id}/demo-project`, {});
  const run = await api(owner, 'POST', `/api/v1/batches/${demo.batch.id}/executions`, { mode: 'test', sample_size: 17, max_retries: 0 });
  for (let i = 0; i < 150; i++) {
    const e = await api(owner, 'GET', `/api/v1/executions/${run.id}`);
    if (e.state === 'completed') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const ctx = await contextFor(browser, owner);
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/executions/${run.id}?jobs=partial`);
  await hydrated(page);
  // Row 17's expected price is deliberately wrong.
  await page.click('[data-testid=jobs] a:text-is("17")');
  await page.waitForURL(/\/jobs\/\d+$/);
  await hydrated(page);
  await page.waitForSelector('[data-testid=job-verdict]:has-text("partial")');
  await page.click('[data-testid=accept-price]');
  await page.waitForSelector('[data-testid=job-verdict]:has-text("pass")');
  await shot(page, '27-job-accepted');
  const e = await api(owner, 'GET', `/api/v1/executions/${run.id}`);
  assert.equal(e.failed, 0);
  await ctx.close();
});

test('an evaluation set is saved from the batch page and a run runs exactly its rows', async () => {
  const owner = await apiSignUp(email('sete'), 'Seth Sets');
  const org = await apiCreateOrg(owner, `Sets ${Date.now()}`);
  const demo = await api(owner, 'POST', `/api/v1/orgs/${org.id}/demo-project`, {});
  const ctx = await contextFor(browser, owner, { viewport: { width: 1400, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/batches/${demo.batch.id}`);
  await hydrated(page);
  await page.waitForSelector('#evaluation-sets >> text=No evaluation sets yet');
  await page.click('#evaluation-sets summary:has-text("Save a set")');
  // A typo names the field.
  await page.fill('#set-name', 'Hard pages');
  await page.fill('#set-rows', '3-1');
  await page.click('button:has-text("Save set")');
  await page.waitForSelector('#rows-error:has-text("not a row number or a range")');
  await page.fill('#set-rows', '2-4, 9');
  await page.click('button:has-text("Save set")');
  await page.waitForSelector('[data-testid=evaluation-sets] td:has-text("Hard pages")');
  assert.match(await page.locator('[data-testid=evaluation-sets] tbody tr').first().textContent(), /Hard pages\s*v1\s*4/);
  // The form is empty again, ready for the next set.
  await page.waitForFunction(() => document.querySelector('#set-name')?.value === '');
  await shot(page, '27-evaluation-sets');
  // Run it: the Runs card's Rows choice names the set; the estimate counts its rows.
  await page.selectOption('#run-set', { label: 'set “Hard pages” v1 (4 rows)' });
  await page.waitForSelector('[data-testid=estimate]:has-text("4 jobs")');
  await page.click('button:has-text("Start run")');
  await page.waitForURL(/\/executions\/[0-9a-f-]+$/);
  const runId = page.url().split('/executions/')[1];
  const jobs = await api(owner, 'GET', `/api/v1/executions/${runId}/jobs`);
  assert.deepEqual(jobs.items.map((j) => j.row_index).sort((a, b) => a - b), [2, 3, 4, 9]);
  await finished(owner, runId);

  // From the run's grid: two selected jobs become a set of their rows.
  await page.goto(`${BASE}/o/${org.slug}/executions/${runId}`);
  await hydrated(page);
  await page.locator('[data-testid=jobs] tbody tr').nth(0).locator('input[type=checkbox]').check();
  await page.locator('[data-testid=jobs] tbody tr').nth(2).locator('input[type=checkbox]').check();
  await page.fill('#grid-set-name', 'Picked in the grid');
  await page.click('[data-testid=save-set] button:has-text("Save set")');
  await page.waitForSelector('[data-testid=bulk-notice]:has-text("Saved evaluation set “Picked in the grid” (version 1, 2 rows)")');
  const sets = await api(owner, 'GET', `/api/v1/batches/${demo.batch.id}/evaluation-sets`);
  assert.deepEqual(sets.find((s) => s.name === 'Picked in the grid').rows, [2, 4]);
  await ctx.close();
});
