// Two people watch one execution in two browsers: the counters move
// without reloading; one pauses and the other sees "paused" (and who did
// it) within a second, with the controls changed; resume; the final state
// arrives without a reload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, hydrated, shot, email, apiSignUp, apiCreateOrg, api, apiJoin, contextFor, waitUntil } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const count = async (page, name) => Number((await page.textContent(`[data-testid=count-${name}]`)).trim());

test('two viewers follow, pause and resume one execution live', async () => {
  const owner = await apiSignUp(email('olga'), 'Olga Owner');
  const org = await apiCreateOrg(owner, `Live ${Date.now()}`);
  const member = await apiJoin(owner, org.id, `mark${Date.now()}`, 'member');
  const demo = await api(owner, 'POST', `/api/v1/orgs/${org.id}/demo-project`, {});
  // The demo agent service reports steps and takes ~0.3 s a page: a run of
  // 40 rows two at a time lasts several seconds.
  const run = await api(owner, 'POST', `/api/v1/batches/${demo.batch.id}/executions`,
    { mode: 'test', sample_size: 40, concurrency: 2, agent: 'remote', max_retries: 0 });
  // Held until both viewers are ready: on a loaded machine the pages can
  // take longer to load than the run takes to finish.
  await api(owner, 'POST', `/api/v1/executions/${run.id}/pause`, {});
  const url = `${BASE}/o/${org.slug}/executions/${run.id}`;

  const ownerCtx = await contextFor(browser, owner);
  const memberCtx = await contextFor(browser, member);
  const a = await ownerCtx.newPage();
  const b = await memberCtx.newPage();
  // One page at a time: two debug bundles (22 MB of WASM each) compiling
  // at once on a loaded 2-core machine once took over 90 s.
  await a.goto(url);
  await hydrated(a);
  await b.goto(url);
  await hydrated(b);
  await a.waitForSelector('[data-testid=live-status]:has-text("Live")');
  await api(owner, 'POST', `/api/v1/executions/${run.id}/resume`, {});
  await a.waitForSelector('[data-testid=execution-state]:has-text("running")', { timeout: 15000 });

  // Counters move without a reload, on both pages.
  const before = await count(b, 'completed');
  await waitUntil(b, (n) => Number(document.querySelector('[data-testid=count-completed]').textContent) > n + 1, before, { timeout: 15000 });
  await a.waitForSelector('[data-testid=running-jobs]');
  assert.match(await a.textContent('[data-testid=running-jobs]'), /Opening the page|Reading the fields|starting/);
  assert.match(await a.title(), /^\d+% · /);
  await shot(a, '24-execution-live');

  // The owner pauses; the member's page shows it without a reload. How
  // fast is measured and printed, not asserted: a timed assertion fails on
  // a loaded machine for reasons that are not the product's (the live
  // latency's target is in BENCHMARKS.md).
  await a.click('button:has-text("Pause")');
  const t = Date.now();
  await b.waitForSelector('[data-testid=execution-state]:has-text("paused")', { timeout: 15000 });
  const seen = Date.now() - t;
  await b.waitForSelector('button:has-text("Resume")');
  assert.equal(await b.isVisible('button:has-text("Pause")'), false);
  await b.waitForSelector('[data-testid=event-feed] li:has-text("Olga Owner paused the run")');
  await shot(b, '25-execution-paused-other-viewer');
  console.log(`pause seen by the other viewer after ${seen} ms`);

  // The member resumes; the owner sees it, and the run ends on both pages.
  await b.click('button:has-text("Resume")');
  await a.waitForSelector('[data-testid=execution-state]:has-text("running")', { timeout: 15000 });
  await a.waitForSelector('[data-testid=execution-state]:has-text("completed")', { timeout: 60000 });
  await b.waitForSelector('[data-testid=execution-state]:has-text("completed")', { timeout: 15000 });
  assert.equal((await count(a, 'completed')) + (await count(a, 'errors')), 40);
  assert.equal(await count(b, 'queued'), 0);
  await b.waitForSelector('[data-testid=event-feed] li:has-text("resumed the run")');
  await shot(a, '26-execution-finished-live');
  await ownerCtx.close();
  await memberCtx.close();
});
