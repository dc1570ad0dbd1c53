// The foundation's user story, through the real UI: sign up, create an
// organization, invite a teammate who accepts in a second browser, sees the
// organization as a viewer without the invite control, is made admin by the
// owner, and can then invite.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, PASSWORD, launch, hydrated, shot, email, waitUntil } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('owner invites a viewer, promotes them to admin, and they can invite', async () => {
  const ownerEmail = email('olga');
  const vicEmail = email('vic');
  const orgName = `Acme ${Date.now()}`;

  // The owner signs up and creates an organization.
  const ownerCtx = await browser.newContext();
  const owner = await ownerCtx.newPage();
  await owner.goto(`${BASE}/signup`);
  await hydrated(owner);
  await shot(owner, '01-signup');
  await owner.fill('#name', 'Olga Owner');
  await owner.fill('#email', ownerEmail);
  await owner.fill('#password', PASSWORD);
  await owner.click('.card button[type=submit]');
  await owner.waitForURL('**/orgs/new');
  await hydrated(owner);
  await shot(owner, '02-new-org');
  await owner.fill('#name', orgName);
  await owner.click('.page button[type=submit]');
  await owner.waitForURL(/\/o\/acme-\d+/);
  const orgPath = new URL(owner.url()).pathname;
  await owner.waitForSelector(`h1:has-text("${orgName}")`);
  await shot(owner, '03-overview');

  // Invite Vic as a viewer; the link is shown once.
  await owner.goto(`${BASE}${orgPath}/members`);
  await hydrated(owner);
  await owner.fill('#invite-email', vicEmail);
  await owner.selectOption('#invite-role', 'viewer');
  await owner.click('text=Create invitation');
  const linkBox = owner.getByTestId('invite-link');
  await linkBox.waitFor();
  const link = await linkBox.inputValue();
  assert.match(link, /\/invite\/[0-9a-f]{64}$/);
  await owner.waitForSelector(`td:has-text("${vicEmail}")`); // pending list
  await shot(owner, '04-invited');

  // Vic opens the link in another browser, signs up and accepts.
  const vicCtx = await browser.newContext();
  const vic = await vicCtx.newPage();
  await vic.goto(link);
  await vic.waitForSelector(`h2:has-text("Join ${orgName}")`);
  await shot(vic, '05-invitation');
  await vic.click('text=Create an account to accept');
  await vic.waitForURL(/\/signup\?/);
  await hydrated(vic);
  assert.equal(await vic.inputValue('#email'), vicEmail, 'the invited address is filled in');
  await vic.fill('#name', 'Vic Viewer');
  await vic.fill('#password', PASSWORD);
  await vic.click('.card button[type=submit]');
  await vic.waitForURL('**/invite/**');
  await hydrated(vic);
  await vic.click('text=Accept invitation');
  await vic.waitForURL(`**${orgPath}`);
  await vic.waitForSelector(`h1:has-text("${orgName}")`);
  assert.equal(await vic.textContent('.page-head .badge'), 'Viewer');

  // As a viewer: the team is visible, the invite form and API keys are not.
  await vic.goto(`${BASE}${orgPath}/members`);
  await vic.waitForSelector('h2:has-text("Members")');
  assert.equal(await vic.locator('#invite').count(), 0, 'viewers have no invite control');
  assert.equal(await vic.locator('nav >> text=API keys').count(), 0);
  await shot(vic, '06-viewer-team');

  // The owner makes Vic an admin.
  await owner.goto(`${BASE}${orgPath}/members`);
  await hydrated(owner);
  const roleSelect = owner.getByLabel('Role of Vic Viewer');
  await roleSelect.selectOption('admin');
  // The select shows "admin" as soon as it is chosen: wait for the save
  // itself (its server call answering), or Vic may look before it lands.
  const saved = owner.waitForResponse((r) => r.request().method() === 'POST' && r.url().includes('/rpc/change_role'));
  await owner.locator('form', { has: roleSelect }).locator('button').click();
  assert.equal((await saved).status(), 200);
  await waitUntil(owner,
    () => document.querySelector('select[aria-label="Role of Vic Viewer"]')?.value === 'admin');
  await shot(owner, '07-promoted');

  // Now Vic can invite.
  await vic.goto(`${BASE}${orgPath}/members`);
  await hydrated(vic);
  await vic.waitForSelector('#invite');
  await vic.fill('#invite-email', email('wendy'));
  await vic.click('text=Create invitation');
  await vic.getByTestId('invite-link').waitFor();
  await shot(vic, '08-admin-invites');

  await ownerCtx.close();
  await vicCtx.close();
});
