// Pages work before (and without) hydration: sign in with JavaScript off
// and land on the dashboard; a wrong password says so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, PASSWORD, launch, shot, email, apiSignUp, apiCreateOrg } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('sign in and see the dashboard with JavaScript disabled', async () => {
  const address = email('nojs');
  const cookie = await apiSignUp(address, 'Nora NoScript');
  const org = await apiCreateOrg(cookie, `Static ${Date.now()}`);

  const ctx = await browser.newContext({ javaScriptEnabled: false });
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}`);
  await page.waitForURL(/\/login\?next=/);

  await page.fill('#email', address);
  await page.fill('#password', 'not the password');
  await page.click('main button[type=submit], .card button[type=submit]');
  await page.waitForURL(/\/login\?error=credentials/);
  assert.match(await page.textContent('[role=alert]'), /email or password is incorrect/);

  await page.fill('#email', address);
  await page.fill('#password', PASSWORD);
  await page.click('main button[type=submit], .card button[type=submit]');
  await page.waitForURL(`**/o/${org.slug}`);
  assert.equal(await page.textContent('h1'), org.name);
  assert.equal(await page.textContent('.page-head .badge'), 'Owner');
  await shot(page, '09-no-js-dashboard');
  await ctx.close();
});

test('sign-up problems are explained with JavaScript disabled', async () => {
  const address = email('taken');
  await apiSignUp(address, 'Tina Taken');
  const ctx = await browser.newContext({ javaScriptEnabled: false });
  const page = await ctx.newPage();
  await page.goto(`${BASE}/signup`);
  await page.fill('#name', 'Tina Again');
  await page.fill('#email', address);
  await page.fill('#password', PASSWORD);
  await page.click('.card button[type=submit]');
  await page.waitForURL(/\/signup\?error=taken/);
  assert.match(await page.textContent('[role=alert]'), /already exists/);
  assert.equal(await page.inputValue('#email'), address, 'the address is kept');
  await ctx.close();
});
