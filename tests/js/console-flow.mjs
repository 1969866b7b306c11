// The admin console in a real browser: headless Chromium (Debian's, driven by
// playwright-core, with JavaScript off, since every console action is a plain form) signs
// in and does each page's main action; a screenshot of each page is saved. Every page is
// also opened in a second context with JavaScript on (the same cookies) where axe-core is
// injected; any serious or critical accessibility violation fails the step.
//
// Run by tests/tests/console.rs, which starts the server, seeds an administrator and
// passes the settings in HEARTH_* variables.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { emptyFolder, finish, launchChromium, setting, step } from './lib/harness.mjs';

const base = setting('HEARTH_BASE');
const site = setting('HEARTH_SITE');
const username = setting('HEARTH_USERNAME');
const password = setting('HEARTH_PASSWORD');
const artifacts = setting('HEARTH_ARTIFACTS');
const chromiumPath = setting('HEARTH_CHROMIUM');
const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

const consoleUrl = `${base}/admin`;
await emptyFolder(artifacts);

const browser = await launchChromium(chromiumPath);

const context = await browser.newContext({
  javaScriptEnabled: false,
  acceptDownloads: true,
  viewport: { width: 1280, height: 900 },
});
const page = await context.newPage();
// Where axe runs: JavaScript on, the pages' CSP (which allows no script) bypassed for the
// injected checker only, the flow's cookies copied in before each check.
const axeContext = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 } });
const axePage = await axeContext.newPage();
let shots = 0;

/** Saves a full-page screenshot of the flow's page. */
async function screenshot(name) {
  shots += 1;
  const file = join(artifacts, `${String(shots).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot ${file}`);
}

/** Opens `url` with the flow's cookies, runs axe-core, and fails on serious violations. */
async function accessible(url) {
  await axeContext.clearCookies();
  await axeContext.addCookies(await context.cookies());
  const response = await axePage.goto(url);
  assert.equal(response.status(), 200, `${url} opens for the accessibility check`);
  await axePage.addScriptTag({ path: axePath });
  const violations = await axePage.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
    }));
  });
  for (const v of violations) console.log(`axe ${url}: ${v.impact} ${v.id} (${v.help}) at ${v.nodes.join(', ')}`);
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(serious, [], `${url} has no serious or critical accessibility violation`);
}

/** Asserts the answer refuses framing and the page runs no script. */
function noFrameNoScript(response) {
  const headers = response.headers();
  assert.equal(headers['x-frame-options'], 'DENY');
  assert.match(headers['content-security-policy'], /frame-ancestors 'none'/);
  assert.match(headers['content-security-policy'], /default-src 'none'/);
}

const APP = 'Growth chart';
const NEW_USER = 'frontdesk';

try {
  await step('the sign-in page renders without JavaScript and refuses framing', async () => {
    const response = await page.goto(`${consoleUrl}/sign-in?site=${site}`);
    assert.equal(response.status(), 200);
    noFrameNoScript(response);
    assert.equal(await page.locator('h1').textContent(), 'Hearth admin sign-in');
    assert.equal(await page.locator('script').count(), 0, 'no script on the page');
    for (const label of ['Site', 'User name', 'Password']) {
      assert.equal(await page.getByLabel(label, { exact: true }).count(), 1, `a field labelled ${label}`);
    }
    await screenshot('sign-in');
    await accessible(`${consoleUrl}/sign-in?site=${site}`);
  });

  await step('a wrong password keeps the form with one vague error', async () => {
    await page.getByLabel('User name', { exact: true }).fill(username);
    await page.getByLabel('Password', { exact: true }).fill(`${password} nope`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForLoadState();
    assert.equal(await page.getByRole('alert').textContent(), 'The site, user name or password is wrong.');
    await screenshot('sign-in-error');
  });

  await step('the administrator signs in and sees the sites', async () => {
    await page.getByLabel('User name', { exact: true }).fill(username);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${consoleUrl}/sites`);
    assert.equal(await page.locator('h1').textContent(), 'Sites');
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'hearth_admin');
    assert.ok(session, 'a session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.secure, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.path, '/admin');
    const text = await page.locator('main').textContent();
    assert.match(text, /Signed in here/);
    assert.match(text, /second/, 'the other site is listed');
    await screenshot('sites');
    await accessible(`${consoleUrl}/sites`);
  });

  await step('users: a user is added', async () => {
    await page.getByRole('link', { name: 'Users' }).click();
    await page.waitForURL(`${consoleUrl}/users`);
    await page.getByLabel('User name', { exact: true }).fill(NEW_USER);
    await page.getByLabel('First name', { exact: true }).fill('Fran');
    await page.getByLabel('Last name', { exact: true }).fill('Desk');
    await page.getByLabel('Role', { exact: true }).selectOption('front_office');
    await page.getByLabel('Password (at least 8 characters)').fill('a long new password');
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.waitForURL(/\/admin\/users\?notice=/);
    assert.equal(await page.getByRole('status').textContent(), `Added the user ${NEW_USER}.`);
    const row = page.locator('tr', { hasText: NEW_USER });
    assert.match(await row.textContent(), /front_office/);
    await screenshot('users');
    await accessible(`${consoleUrl}/users`);
  });

  await step('users: the new user is disabled', async () => {
    await page.getByRole('button', { name: `Disable ${NEW_USER}` }).click();
    await page.waitForURL(/\/admin\/users\?notice=/);
    assert.equal(await page.getByRole('status').textContent(), `${NEW_USER} is disabled.`);
    assert.match(await page.locator('tr', { hasText: NEW_USER }).textContent(), /disabled/);
  });

  await step('API clients: the SMART registration form registers an app and shows its secret once', async () => {
    await page.getByRole('link', { name: 'API clients' }).click();
    await page.waitForURL(`${consoleUrl}/clients`);
    await page.getByRole('link', { name: 'Register a SMART app' }).click();
    await page.waitForURL(`${consoleUrl}/clients/register`);
    await screenshot('register-form');
    await accessible(`${consoleUrl}/clients/register`);
    await page.getByLabel('Confidential (a server that keeps a secret)').check();
    await page.getByLabel('App name', { exact: true }).fill(APP);
    await page.getByLabel('Contact e-mail', { exact: true }).fill('ops@example.org');
    await page.getByLabel('Redirect URIs (one a line)', { exact: true }).fill('https://growth.example/callback');
    await page.getByLabel('Launch URI (EHR launch)').fill('https://growth.example/launch');
    await page.getByLabel('Scopes (space-separated)').fill('openid fhirUser launch user/Patient.rs');
    await page.getByRole('button', { name: 'Register the app' }).click();
    await page.waitForLoadState();
    assert.equal(await page.locator('h1').textContent(), 'App registered');
    assert.ok((await page.locator('#client-id').textContent()).length >= 20, 'a client id');
    assert.ok((await page.locator('#client-secret').textContent()).length >= 40, 'a secret');
    await screenshot('registered');
  });

  await step('API clients: the app is listed with its scopes and can be disabled', async () => {
    await page.goto(`${consoleUrl}/clients`);
    const row = page.locator('tr', { hasText: APP });
    assert.match(await row.textContent(), /user\/Patient\.rs/);
    assert.match(await row.textContent(), /enabled/);
    await screenshot('clients');
    await accessible(`${consoleUrl}/clients`);
    await page.getByRole('button', { name: `Disable ${APP}` }).click();
    await page.waitForURL(/\/admin\/clients\?notice=/);
    assert.equal(await page.getByRole('status').textContent(), `${APP} is disabled.`);
  });

  await step('plugins: every plugin is listed and the reload button reloads', async () => {
    await page.getByRole('link', { name: 'Plugins' }).click();
    await page.waitForURL(`${consoleUrl}/plugins`);
    assert.match(await page.locator('tr', { hasText: 'patient.wasm' }).first().textContent(), /serving/);
    await accessible(`${consoleUrl}/plugins`);
    await page.getByRole('button', { name: "Reload this site's plugins from disk" }).click();
    await page.waitForLoadState();
    assert.match(await page.getByRole('status').textContent(), /^Reloaded: /);
    await screenshot('plugins');
  });

  await step('audit log: a search narrows the list and the CSV export downloads', async () => {
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.waitForURL(`${consoleUrl}/audit`);
    await page.getByLabel('Path contains', { exact: true }).fill('/admin/users');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/\/admin\/audit\?.*route=%2Fadmin%2Fusers/);
    const rows = await page.locator('tbody tr').allTextContents();
    assert.ok(rows.length >= 2, `the user actions are found: ${rows.length}`);
    assert.ok(rows.every((r) => r.includes('/admin/users')), 'only what was asked for');
    await screenshot('audit');
    await accessible(page.url());
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Export the matching requests as CSV' }).click(),
    ]);
    assert.equal(download.suggestedFilename(), `audit-${site}.csv`);
    const lines = (await readFile(await download.path(), 'utf8')).trim().split('\r\n');
    assert.equal(lines[0], 'id,created_at,method,path,status,duration_us,user_id,client_id,patient_id,plugin,ip_address');
    assert.equal(lines.length, rows.length + 1, 'one line per matching request');
  });

  await step('settings: a setting is changed', async () => {
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.waitForURL(`${consoleUrl}/settings`);
    await accessible(`${consoleUrl}/settings`);
    await page.getByLabel('New value of oauth.password_grant').selectOption('users');
    await page.locator('tr', { hasText: 'oauth.password_grant' }).getByRole('button', { name: 'Save' }).click();
    await page.waitForURL(/\/admin\/settings\?notice=/);
    assert.equal(await page.getByRole('status').textContent(), 'oauth.password_grant is now users.');
    await screenshot('settings');
  });

  await step('signing out ends the session', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/admin\/sign-in/);
    assert.equal(await page.getByRole('status').textContent(), 'You are signed out.');
    await page.goto(`${consoleUrl}/users`);
    assert.match(page.url(), /\/admin\/sign-in$/, 'the console asks to sign in again');
    await screenshot('signed-out');
  });
} finally {
  await browser.close();
}

finish();
