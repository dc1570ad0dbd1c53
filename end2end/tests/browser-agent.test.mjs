// A run with the browser agent: the job page shows, beside each attempt,
// the screenshot the headless browser took at its end, its log as a
// timeline and the page as kept; the run page shows live pictures of the
// running jobs, which change while somebody watches.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, hydrated, shot, email, apiSignUp, apiCreateOrg, api, contextFor, waitUntil } from './helpers.mjs';

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
  // The attempt's steps as a timeline, and the page as the agent saw it.
  const log = page.locator('[data-testid=attempt-log]').first();
  const lines = await log.locator('li').allTextContents();
  assert.ok(lines.length >= 5, lines.join('\n'));
  assert.ok(lines.some((l) => /Network quiet after/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /Step 1 of 1: click #show-price/.test(l)), lines.join('\n'));
  const kept = await page.locator('[data-testid=attempt-page]').first().getAttribute('href');
  assert.match(kept, /^\/api\/v1\/attempts\/\d+\/page$/);
  await shot(page, '90-job-page-browser-screenshot');
  await ctx.close();
});

test('a viewer of a running browser run sees live pictures that change', async () => {
  const owner = await apiSignUp(email('live'), 'Lena Live');
  const org = await apiCreateOrg(owner, `Live ${Date.now()}`);
  const demo = await api(owner, 'POST', `/api/v1/orgs/${org.id}/demo-project`, {});
  // Each job lingers on its page, so there is something to watch (long
  // enough for a slow Chromium start; the test stops the run at its end).
  await api(owner, 'PATCH', `/api/v1/projects/${demo.project.id}/agent`,
    { kind: 'browser', timeout_secs: 120,
      steps: [{ action: 'wait', ms: 30000 }, { action: 'wait', ms: 30000 }] });
  const run = await api(owner, 'POST', `/api/v1/batches/${demo.batch.id}/executions`,
    { mode: 'test', sample_size: 2, concurrency: 2, max_retries: 0 });
  assert.equal(run.agent, 'browser');

  const ctx = await contextFor(browser, owner, { viewport: { width: 1400, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/executions/${run.id}`);
  await hydrated(page);
  const thumb = page.locator('[data-testid=live-grid] img').first();
  await thumb.waitFor({ state: 'attached' });
  // A frame arrives (800 px wide) and is shown.
  await waitUntil(page, () => {
    const img = document.querySelector('[data-testid=live-grid] img');
    return img && img.complete && img.naturalWidth === 800 && img.style.visibility === 'visible';
  }, null, { timeout: 40000 });
  assert.match(await thumb.getAttribute('alt'), /^Row \d+ in the browser$/);
  await shot(page, '91-run-page-live-thumbnails');
  // The pictures are new ones, not the same frame again.
  const jobId = (await thumb.getAttribute('src')).match(/jobs\/(\d+)\//)[1];
  const takenAt = () => page.evaluate(async (id) => {
    const r = await fetch(`/api/v1/jobs/${id}/live-frame`);
    return r.status === 200 ? r.headers.get('x-mino-frame-at') : null;
  }, jobId);
  const first = await takenAt();
  assert.ok(first, 'a frame is there');
  let later = first;
  for (let i = 0; i < 20 && later === first; i++) {
    await new Promise((r) => setTimeout(r, 250));
    later = await takenAt();
  }
  assert.ok(later && later > first, `frames taken at ${first}, then ${later}`);
  const src1 = await thumb.getAttribute('src');
  await new Promise((r) => setTimeout(r, 700));
  assert.notEqual(await thumb.getAttribute('src'), src1, 'the thumbnail asks for new frames');

  // The job page's large view says what the agent is doing, and where.
  const jobPage = await ctx.newPage();
  await jobPage.goto(`${BASE}/o/${org.slug}/jobs/${jobId}`);
  await hydrated(jobPage);
  const status = jobPage.getByTestId('live-status');
  await waitUntil(jobPage, () => /Step [12] of 2/.test(
    document.querySelector('[data-testid=live-status]')?.textContent || ''), null, { timeout: 15000 });
  assert.match(await status.textContent(), /\/demo\//);
  await jobPage.locator('.live-frame.large img[style*="visible"]').waitFor({ timeout: 15000 });
  await shot(jobPage, '92-job-page-live-view');
  await api(owner, 'POST', `/api/v1/executions/${run.id}/stop`, {});
  await ctx.close();
});

test('an admin sets how long screenshots and kept pages are kept', async () => {
  const owner = await apiSignUp(email('keep'), 'Kim Keep');
  const org = await apiCreateOrg(owner, `Keep ${Date.now()}`);
  const ctx = await contextFor(browser, owner);
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/settings`);
  await hydrated(page);
  const days = page.getByLabel('Keep screenshots and pages for (days)');
  assert.equal(await days.inputValue(), '30');
  // A number out of range is explained beside the field; nothing changes.
  await days.fill('0');
  await page.getByRole('button', { name: 'Save retention' }).click();
  await page.locator('#retention_days-error').waitFor();
  assert.match(await page.locator('#retention_days-error').textContent(), /from 1 to 3650/);
  assert.equal(await days.getAttribute('aria-invalid'), 'true');
  await days.fill('14');
  await page.getByRole('button', { name: 'Save retention' }).click();
  await page.getByRole('status').filter({ hasText: 'Retention saved' }).waitFor();
  await shot(page, '93-settings-retention');
  const saved = await api(owner, 'GET', `/api/v1/orgs/${org.id}`);
  assert.equal(saved.retention_days, 14);
  await page.reload();
  await hydrated(page);
  assert.equal(await page.getByLabel('Keep screenshots and pages for (days)').inputValue(), '14');
  await ctx.close();
});
