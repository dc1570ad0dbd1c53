// A run with the browser agent: the job page shows, beside each attempt,
// the screenshot the headless browser took at its end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, hydrated, shot, email, apiSignUp, apiCreateOrg, api, contextFor } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('the job page shows the screenshot a browser attempt ended on', async () => {
  const owner = await apiSignUp(email('bro'), 'Bruno Wser');
  const org = await apiCreateOrg(owner, `Browser ${Date.now()}`);
  const demo = await api(owner, 'POST', `/api/v1/orgs/${org.id}/demo-project`, {});
  const run = await api(owner, 'POST', `/api/v1/batches/${demo.batch.id}/executions`,
    { mode: 'test', sample_size: 2, max_retries: 0, agent: 'browser' });
  assert.equal(run.agent, 'browser');
  let e;
  for (let i = 0; i < 300; i++) {
    e = await api(owner, 'GET', `/api/v1/executions/${run.id}`);
    if (e.state === 'completed') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(e.state, 'completed');
  const jobs = await api(owner, 'GET', `/api/v1/executions/${run.id}/jobs`);
  const job = jobs.items[0];
  assert.equal(job.verdict, 'pass', JSON.stringify(job));

  const ctx = await contextFor(browser, owner, { viewport: { width: 1400, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/jobs/${job.id}`);
  await hydrated(page);
  const img = page.locator('[data-testid=attempt-screenshot]').first();
  await img.waitFor();
  // The picture loaded (a JPEG the size of the viewport), with a text
  // alternative, and opens full size.
  const natural = await img.evaluate((el) => el.complete && el.naturalWidth);
  assert.equal(natural, 1280);
  assert.match(await img.getAttribute('alt'), /at the end of attempt 1/);
  const href = await page.locator('a.screenshot').first().getAttribute('href');
  assert.match(href, /^\/api\/v1\/attempts\/\d+\/screenshot$/);
  await shot(page, '90-job-page-browser-screenshot');
  await ctx.close();
});
