// API keys from the UI: create one (shown once), use it over the REST API,
// revoke it with confirmation, and see it refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, hydrated, shot, email, apiSignUp, apiCreateOrg } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('create an API key in the UI, use it, revoke it', async () => {
  const cookie = await apiSignUp(email('kim'), 'Kim Keys');
  const org = await apiCreateOrg(cookie, `Keys ${Date.now()}`);
  const ctx = await browser.newContext();
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  const [name, value] = cookie.split('=');
  await ctx.addCookies([{ name, value, url: BASE }]);
  const page = await ctx.newPage();

  await page.goto(`${BASE}/o/${org.slug}/api-keys`);
  await hydrated(page);
  await page.waitForSelector('text=No keys yet');
  await page.fill('#key-name', 'nightly CI');
  await page.check('#scope_write');
  await page.click('button:has-text("Create key")');
  const secretBox = page.getByTestId('api-key-secret');
  await secretBox.waitFor();
  const secret = await secretBox.inputValue();
  assert.match(secret, /^mino_pk_[0-9a-f]{64}$/);
  // The form is empty again, and Copy puts the key on the clipboard.
  assert.equal(await page.inputValue('#key-name'), '');
  await page.click('[data-testid=api-key-secret-copy]');
  await page.waitForSelector('.copy-field [role=status]:has-text("Copied.")');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  await page.waitForSelector('td:has-text("read, write")');
  await shot(page, '10-api-key-created');

  const me = await fetch(`${BASE}/api/v1/me`, { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(me.status, 200);
  const body = await me.json();
  assert.deepEqual(body.api_key.scopes, ['read', 'write']);
  assert.equal(body.orgs[0].slug, org.slug);

  // Revoking asks first.
  await page.click('summary:has-text("Revoke")');
  await page.click('details[open] button:has-text("Revoke")');
  await page.waitForSelector('tr.revoked');
  await shot(page, '11-api-key-revoked');
  const after = await fetch(`${BASE}/api/v1/me`, { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(after.status, 401);
  await ctx.close();
});
