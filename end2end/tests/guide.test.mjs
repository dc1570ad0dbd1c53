// The first-run guide: a new organization's overview walks the whole
// loop on the demo site, and each step ticks when the real thing happens
// — loading the demo, a test run, reading its results, fixing an expected
// value, running again, comparing — never by clicking "done". Hidden, it
// comes back from the account menu.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, hydrated, shot, email, apiSignUp, apiCreateOrg, api, contextFor, finished } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function ticked(page, slug) {
  await page.goto(`${BASE}/o/${slug}`);
  await hydrated(page);
  await page.waitForSelector('[data-testid=guide]');
  const done = await page.$$eval('[data-testid=guide] li[data-done=true]', (l) => l.map((e) => e.dataset.testid));
  return done;
}

test('the guide ticks each step of the loop as it really happens', async () => {
  const owner = await apiSignUp(email('gui'), 'Gia Guide');
  const org = await apiCreateOrg(owner, `Guide ${Date.now()}`);
  const ctx = await contextFor(browser, owner);
  const page = await ctx.newPage();

  assert.deepEqual(await ticked(page, org.slug), []);
  assert.equal((await page.textContent('[data-testid=guide-count]')).trim(), '0 of 7 done');
  await shot(page, '97-guide-new');

  // Step 1 and 2 in the browser: follow the guide's link and load the demo.
  await page.click('[data-testid=guide-project] a');
  await hydrated(page);
  await page.click('#demo button[type=submit]');
  await page.waitForURL(/\/projects\/[0-9a-f-]{36}/);
  assert.deepEqual(await ticked(page, org.slug), ['guide-project', 'guide-batch']);

  // A test run of 20 rows.
  const projects = await api(owner, 'GET', `/api/v1/orgs/${org.id}/projects`);
  const batches = await api(owner, 'GET', `/api/v1/projects/${projects.items[0].id}/batches`);
  const batch = batches.items[0].id;
  const first = await api(owner, 'POST', `/api/v1/batches/${batch}/executions`, { mode: 'test', sample_size: 20, max_retries: 0 });
  await finished(owner, first.id);
  assert.deepEqual(await ticked(page, org.slug), ['guide-project', 'guide-batch', 'guide-test_run']);

  // Reading the results: the guide's link opens the run page.
  await page.click('[data-testid=guide-results] a');
  await page.waitForURL(new RegExp(`/executions/${first.id}`));
  await hydrated(page);
  await page.waitForSelector('[data-testid=jobs]');
  assert.ok((await ticked(page, org.slug)).includes('guide-results'));

  // Fixing the wrong expected price of row 17, then running again.
  const wrong = await api(owner, 'GET', `/api/v1/executions/${first.id}/jobs?evaluation=wrong`);
  const job = await api(owner, 'GET', `/api/v1/jobs/${wrong.items[0].id}`);
  await api(owner, 'PATCH', `/api/v1/rows/${job.row_id}/ground-truth`, {
    version: job.gt_version, values: { price: job.job.extracted.price },
  });
  let done = await ticked(page, org.slug);
  assert.ok(done.includes('guide-fix') && !done.includes('guide-rerun'), done.join());
  const second = await api(owner, 'POST', `/api/v1/batches/${batch}/executions`, { mode: 'test', sample_size: 20, max_retries: 0 });
  await finished(owner, second.id);
  done = await ticked(page, org.slug);
  assert.ok(done.includes('guide-rerun') && !done.includes('guide-compare'), done.join());

  // Comparing the two runs through the guide's link finishes it.
  await page.click('[data-testid=guide-compare] a');
  await page.waitForURL(/\/compare\?a=/);
  await hydrated(page);
  await page.waitForSelector('text=rows both runs judged', { timeout: 30000 }).catch(() => {});
  assert.equal((await ticked(page, org.slug)).length, 7);
  assert.equal((await page.textContent('[data-testid=guide-count]')).trim(), '7 of 7 done');
  await shot(page, '98-guide-done');

  // Put away, it stays away; the account menu brings it back.
  await page.click('[data-testid=hide-guide]');
  await page.waitForSelector('[data-testid=guide]', { state: 'detached' });
  await page.reload();
  await hydrated(page);
  assert.equal(await page.$('[data-testid=guide]'), null);
  await page.click('.usermenu summary');
  await page.click('[data-testid=open-guide]');
  await page.waitForSelector('[data-testid=guide]');
  await ctx.close();
});
