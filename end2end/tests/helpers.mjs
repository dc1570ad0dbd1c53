// Shared helpers: launch Debian's Chromium, wait for hydration, call the API.
import { chromium } from 'playwright-core';
import { join } from 'node:path';

export const BASE = process.env.MINO_E2E_URL ?? 'http://127.0.0.1:3100';
export const PASSWORD = 'correct horse battery';
export const SHOTS = process.env.MINO_E2E_SCREENSHOTS ?? '';

/// Every page of every context records the Content-Security-Policy
/// violations Chromium reports; `hydrated` fails the test on any.
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
    ],
    // Playwright starts every launch with a fresh temporary profile
    // (its own --user-data-dir), so runs never share state.
  });
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (...args) => {
    const ctx = await newContext(...args);
    ctx.on('page', watchPolicy);
    return ctx;
  };
  return browser;
}

function watchPolicy(page) {
  page.cspViolations = [];
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) page.cspViolations.push(msg.text());
  });
}

/// Waits until the WASM bundle has hydrated the page. The tests run a
/// debug build (a 22 MB WASM module): on a loaded 2-core machine, two pages
/// compiling it at once took over 30 s, so the wait is generous.
export async function hydrated(page) {
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 90000 });
  if (page.cspViolations?.length) {
    throw new Error(`Content-Security-Policy violations:\n${page.cspViolations.join('\n')}`);
  }
}

export async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/// A unique address per run, so tests can share one server.
export function email(who) {
  return `${who}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
}

/// Signs up through the API and returns the session cookie.
export async function apiSignUp(address, name) {
  const res = await fetch(`${BASE}/api/v1/auth/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: address, password: PASSWORD, name }),
  });
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${await res.text()}`);
  return res.headers.get('set-cookie').split(';')[0];
}

export async function apiCreateOrg(cookie, name) {
  const res = await fetch(`${BASE}/api/v1/orgs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie },
    body: JSON.stringify({ name }),
  });
  if (res.status !== 201) throw new Error(`create org failed: ${res.status} ${await res.text()}`);
  return res.json();
}

/// A JSON request to the REST API as the holder of `cookie`.
export async function api(cookie, method, path, body) {
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: { 'content-type': 'application/json', cookie },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return json;
}

/// Waits (up to 40 s) until execution `id` has completed; its last state.
export async function finished(cookie, id) {
  for (let i = 0; i < 200; i++) {
    const e = await api(cookie, 'GET', `/api/v1/executions/${id}`);
    if (e.state === 'completed') return e;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`execution ${id} did not complete`);
}

/// Signs up `who` and makes them a member of `orgId` with `role`.
export async function apiJoin(ownerCookie, orgId, who, role) {
  const address = email(who);
  const cookie = await apiSignUp(address, who);
  const inv = await api(ownerCookie, 'POST', `/api/v1/orgs/${orgId}/invitations`, { email: address, role });
  await api(cookie, 'POST', `/api/v1/invitations/${inv.token}/accept`, {});
  return cookie;
}

/// A browser context signed in with `cookie` (from apiSignUp).
export async function contextFor(browser, cookie, options = {}) {
  const ctx = await browser.newContext(options);
  const [name, value] = cookie.split('=');
  await ctx.addCookies([{ name, value, url: BASE }]);
  return ctx;
}

/// Waits until `fn(arg)` is truthy in the page. Playwright's
/// waitForFunction evaluates its predicate from a string, which the pages'
/// Content-Security-Policy (rightly) refuses; `evaluate` is not affected.
export async function waitUntil(page, fn, arg, { timeout = 30000 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      if (await page.evaluate(fn, arg)) return;
    } catch (e) {
      // A navigation replaced the document mid-evaluation: look again.
      if (!/context was destroyed|navigat/i.test(String(e))) throw e;
    }
    if (Date.now() > deadline) throw new Error(`waitUntil: timed out after ${timeout} ms: ${fn}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}
