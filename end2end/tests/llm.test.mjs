// The llm extractor through the UI: an admin adds a model provider (here a
// test server written in this file that speaks the OpenAI wire format and
// answers every request with fixed values — not a model), checks it, a
// project's agent settings choose it, a test run uses it, and the job page
// says which model answered and what it cost.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { BASE, launch, hydrated, shot, email, apiSignUp, apiCreateOrg, api, contextFor } from './helpers.mjs';

let browser;
let server;
let serverUrl;
const seen = [];

before(async () => {
  browser = await launch();
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      seen.push({ path: req.url, auth: req.headers.authorization, body: JSON.parse(body || 'null') });
      // One fixed answer for every request: the extractor keeps its fields
      // and drops the rest; a suggestion reads instructions and reasons.
      const answer = {
        title: 'From the test server', price: 1.5, currency: 'EUR', in_stock: 'yes', ok: true,
        instructions: 'Open the product page and extract the title and the sale price.\nGive prices as numbers.',
        reasons: ['Prices came back wrong: say which price to take.'],
      };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id: 'chatcmpl-e2e', object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: JSON.stringify(answer) }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 50, completion_tokens: 5 },
      }));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  serverUrl = `http://127.0.0.1:${server.address().port}/v1`;
});
after(async () => {
  await browser?.close();
  server?.close();
});

test('an admin adds a model provider, a project uses it and the job page names the model', async () => {
  const owner = await apiSignUp(email('llm'), 'Lola Lm');
  const org = await apiCreateOrg(owner, `Models ${Date.now()}`);
  const ctx = await contextFor(browser, owner, { viewport: { width: 1400, height: 900 } });
  const page = await ctx.newPage();

  // No providers yet: the page says what to do.
  await page.goto(`${BASE}/o/${org.slug}/model-providers`);
  await hydrated(page);
  await page.getByText('No model providers yet.').waitFor();

  // A mistake is named beside its field, and nothing is added.
  await page.locator('#provider-name').fill('Test model server');
  await page.locator('#provider-url').fill(serverUrl);
  await page.locator('#provider-key').fill('sk-e2e-secret-1234');
  await page.locator('#provider-models').fill('tiny cheap');
  await page.getByRole('button', { name: 'Add provider' }).click();
  await page.locator('#models-error').getByText(/Line 1: the input price "cheap" is not a number/).waitFor();

  await page.locator('#provider-models').fill('tiny 1 2');
  await page.getByRole('button', { name: 'Add provider' }).click();
  const card = page.locator('[data-testid=provider]');
  await card.waitFor();
  assert.match(await card.textContent(), /…1234/);
  assert.doesNotMatch(await page.content(), /sk-e2e-secret/, 'the key is never shown again');
  assert.equal(await card.locator('[data-testid=provider-health]').textContent(), 'Healthy');
  await card.getByRole('button', { name: 'Check now' }).click();
  await page.locator('[data-testid=provider-check]').getByText(/answered with tiny/).waitFor();
  assert.equal(seen.at(-1).auth, 'Bearer sk-e2e-secret-1234');
  await shot(page, '95-model-providers');

  // The project's agent settings choose the llm extractor and the model.
  const demo = await api(owner, 'POST', `/api/v1/orgs/${org.id}/demo-project`, {});
  await page.goto(`${BASE}/o/${org.slug}/projects/${demo.project.id}/settings`);
  await hydrated(page);
  await page.locator('#extractor').selectOption('llm');
  const providers = await api(owner, 'GET', `/api/v1/orgs/${org.id}/model-choices`);
  const mine = providers.items.find((p) => p.name === 'Test model server');
  await page.locator('#route_1').selectOption(`${mine.id}|tiny`);
  await page.fill('#agent-version-note', 'Read pages with the test model');
  await page.getByRole('button', { name: 'Save agent settings' }).click();
  await page.getByText('Agent settings saved.').waitFor();
  const project = await api(owner, 'GET', `/api/v1/projects/${demo.project.id}`);
  assert.equal(project.agent.extractor, 'llm');
  assert.deepEqual(project.agent.model_route, [{ provider: mine.id, model: 'tiny' }]);
  // The change to what runs extract is a version, with the note given.
  const versions = await api(owner, 'GET', `/api/v1/projects/${demo.project.id}/versions`);
  assert.equal(versions.items[0].version, project.latest_version);
  assert.equal(versions.items[0].note, 'Read pages with the test model');
  assert.deepEqual(versions.items[0].parts, ['agent']);
  await shot(page, '96-agent-settings-llm');

  // A test run from the batch page uses it.
  await page.goto(`${BASE}/o/${org.slug}/batches/${demo.batch.id}`);
  await hydrated(page);
  assert.equal(await page.locator('#run-extractor').inputValue(), 'llm');
  await page.locator('input[name=sample_size]').fill('2');
  // Nothing has measured the model's tokens yet: the estimate says so.
  await page.waitForSelector('[data-testid=estimate]:has-text("unknown for 2 jobs")');
  await page.getByRole('button', { name: 'Start run' }).click();
  await page.waitForURL(/\/executions\//);
  const runId = page.url().split('/executions/')[1];
  let e;
  for (let i = 0; i < 200; i++) {
    e = await api(owner, 'GET', `/api/v1/executions/${runId}`);
    if (e.state === 'completed') break;
    await new Promise((r) => setTimeout(r, 150));
  }
  assert.equal(e.state, 'completed', JSON.stringify(e));
  assert.equal(e.extractor, 'llm');
  assert.deepEqual(e.tokens, { input: 100, output: 10 });
  const jobs = await api(owner, 'GET', `/api/v1/executions/${runId}/jobs`);
  await page.goto(`${BASE}/o/${org.slug}/jobs/${jobs.items[0].id}`);
  await hydrated(page);
  const answered = await page.locator('[data-testid=attempt-model]').first().textContent();
  assert.match(answered, /Answered by Test model server \/ tiny · 50 input and 5 output tokens · cost 0\.00006/);
  await shot(page, '97-job-page-llm');

  // The test run measured 50 input and 5 output tokens a job: the next
  // run is estimated from them at the model's prices.
  await page.goto(`${BASE}/o/${org.slug}/batches/${demo.batch.id}`);
  await hydrated(page);
  await page.locator('input[name=sample_size]').fill('10');
  await page.waitForSelector(
    '[data-testid=estimate]:has-text("10 jobs × about 0.00006 = 0.0006 (50 input and 5 output tokens a job in the last test run, at Test model server / tiny\'s prices)")',
  );

  // The run's failures (the test server's prices are wrong) go to the
  // model for better instructions; saving them makes a version.
  await page.goto(`${BASE}/o/${org.slug}/executions/${runId}`);
  await hydrated(page);
  await page.click('#suggest button:has-text("Suggest better instructions")');
  await page.waitForSelector('[data-testid=suggestion-reasons] li:has-text("say which price to take")');
  assert.match(await page.textContent('[data-testid=suggestion-model]'), /Test model server \/ tiny read \d+ failing example/);
  assert.ok((await page.locator('#suggest table.diff td.add').count()) >= 1);
  assert.match(await page.inputValue('#suggested-note'), /^Suggested from Test run v\d+/);
  await shot(page, '98-suggested-instructions');
  const before = (await api(owner, 'GET', `/api/v1/projects/${demo.project.id}`)).latest_version;
  await page.click('#suggest button:has-text("Save as a new version")');
  await page.waitForSelector(`#suggest :text("Saved as version ${before + 1}.")`);
  await ctx.close();
});
