// The audit log page: an admin sees who changed what, filters by person
// and action with the keyboard-usable form, opens an entry's before/after,
// and downloads the same selection as CSV. A member is told it's for admins.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { BASE, launch, hydrated, shot, email, apiSignUp, apiCreateOrg, api, apiJoin, contextFor } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('an admin filters the audit log and downloads it', async () => {
  const owner = await apiSignUp(email('aud'), 'Audrey Owner');
  const org = await apiCreateOrg(owner, `Audit ${Date.now()}`);
  const member = await apiJoin(owner, org.id, 'mel', 'member');
  const project = await api(member, 'POST', `/api/v1/orgs/${org.id}/projects`, { name: 'Prices' });
  await api(member, 'PATCH', `/api/v1/projects/${project.id}`, { name: 'Prices v2' });

  const ctx = await contextFor(browser, owner, { acceptDownloads: true });
  const page = await ctx.newPage();
  await page.goto(`${BASE}/o/${org.slug}/audit-log`);
  await hydrated(page);
  const rows = page.locator('[data-testid=audit-log] tbody tr:not(.audit-detail)');
  // organization.create, invitation.create, invitation.accept, project.create, project.update
  assert.equal(await rows.count(), 5);
  assert.match(await rows.nth(0).innerText(), /project\.update/);
  assert.match(await rows.nth(0).innerText(), /name: "Prices" → "Prices v2"/);
  // The resource by its name, not its id.
  assert.match(await rows.nth(0).innerText(), /project “Prices v2”/);
  await shot(page, '50-audit-log');

  // Filter to the member's project changes, from the form.
  const mel = await page.$eval('#audit-actor', (s) => [...s.options].find((o) => o.text.startsWith('mel ')).value);
  await page.selectOption('#audit-actor', mel);
  await page.fill('#audit-action', 'project.');
  await page.press('#audit-action', 'Enter');
  await page.waitForURL(/action=project\./);
  await hydrated(page);
  assert.equal(await rows.count(), 2);
  // An entry opens to its before and after.
  await rows.nth(0).locator('[data-testid=audit-detail-toggle]').click();
  const detail = page.locator('[data-testid=audit-log] tr.audit-detail:visible');
  await detail.waitFor();
  const before = await detail.locator('.audit-json pre').first().innerText();
  assert.match(before, /"Prices"/);
  await shot(page, '51-audit-log-filtered');

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('[data-testid=audit-download]'),
  ]);
  const csv = fs.readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/);
  assert.equal(csv.length, 3, csv.join('\n'));
  assert.match(csv[1], /,project\.update,project,/);
  await ctx.close();

  // A member gets an explanation, not the log.
  const mctx = await contextFor(browser, member);
  const mpage = await mctx.newPage();
  await mpage.goto(`${BASE}/o/${org.slug}/audit-log`);
  await mpage.waitForSelector('text=Only admins and owners read the audit log.');
  await mctx.close();
});
