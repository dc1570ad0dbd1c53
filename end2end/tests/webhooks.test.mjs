// Webhooks from the UI: add one for a local receiver (the generated secret
// is shown once), send a test event and see it in the delivery log, check
// its signature as a receiver would, disable it, and delete it after
// confirming.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHmac } from 'node:crypto';
import { BASE, launch, hydrated, shot, email, apiSignUp, apiCreateOrg, contextFor } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/// A receiver on 127.0.0.1 that keeps what it was sent.
async function receiver() {
  const seen = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('thanks');
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${server.address().port}/hook`, seen, server };
}

test('add a webhook, send a test event, read the log, disable and delete it', async () => {
  const hook = await receiver();
  const cookie = await apiSignUp(email('hana'), 'Hana Hooks');
  const org = await apiCreateOrg(cookie, `Hooks ${Date.now()}`);
  const ctx = await contextFor(browser, cookie);
  const page = await ctx.newPage();

  await page.goto(`${BASE}/o/${org.slug}/webhooks`);
  await hydrated(page);
  await page.waitForSelector('text=No webhooks yet');
  await shot(page, '60-webhooks-empty');

  // A bad URL is explained under its field.
  await page.fill('#hook-url', 'ftp://example.com/x');
  await page.click('button:has-text("Add webhook")');
  await page.waitForSelector('#url-error');

  await page.fill('#hook-url', hook.url);
  await page.fill('#hook-description', 'Relay for the pricing team');
  await page.uncheck('#new-event_execution_started');
  await page.click('button:has-text("Add webhook")');
  const secretBox = page.getByTestId('webhook-secret');
  await secretBox.waitFor();
  const secret = await secretBox.inputValue();
  assert.match(secret, /^whsec_[0-9a-f]{48}$/);
  await page.waitForSelector('[data-testid="webhook"] >> text=execution.completed, execution.failed, job.failed');

  await page.click('button:has-text("Send test event")');
  // The dispatcher sends it within a second or so; "Refresh" reads again.
  for (let i = 0; i < 40 && !(await page.$('[data-testid="delivery"][data-state="succeeded"]')); i++) {
    await page.waitForTimeout(250);
    await page.click('button:has-text("Refresh")');
  }
  await page.waitForSelector('[data-testid="delivery"][data-state="succeeded"]');
  await page.waitForSelector('[data-testid="delivery"] >> text=HTTP 200');
  await page.click('summary:has-text("Attempts and body")');
  await page.waitForSelector('tr.delivery-more >> text=thanks');
  await shot(page, '61-webhook-delivered');

  assert.equal(hook.seen.length, 1);
  const got = hook.seen[0];
  assert.equal(got.headers['mino-event'], 'webhook.test');
  const [, t, v1] = got.headers['mino-signature'].match(/^t=(\d+),v1=([0-9a-f]{64})$/);
  const expected = createHmac('sha256', secret).update(`${t}.`).update(got.body).digest('hex');
  assert.equal(v1, expected, 'the signature verifies with the secret shown');
  assert.equal(JSON.parse(got.body).type, 'webhook.test');

  await page.click('button:has-text("Disable")');
  await page.waitForSelector('[data-testid="webhook-disabled"] >> text=Disabled by Hana Hooks');
  await shot(page, '62-webhook-disabled');

  // Deleting asks first.
  await page.click('summary:has-text("Delete…")');
  await page.click('details[open] button:has-text("Delete webhook")');
  await page.waitForSelector('text=No webhooks yet');
  await ctx.close();
  hook.server.close();
});
