// Swagger UI at /apis/{site}/docs in a real browser: headless Chromium (Debian's, driven
// by playwright-core) opens the page, which loads only the host's own files; "Authorize"
// goes through Hearth's sign-in and consent pages in a popup (authorization code with
// PKCE, the site's own docs client); then "Try it out" calls GET /patient from the UI and
// gets a 200. A screenshot of each stage is saved.
//
// Run by tests/tests/openapi.rs, which starts the server, seeds a staff user and a
// patient, and passes them in HEARTH_* variables.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { emptyFolder, finish, launchChromium, setting, step } from './lib/harness.mjs';

const base = setting('HEARTH_BASE');
const site = setting('HEARTH_SITE');
const username = setting('HEARTH_USERNAME');
const password = setting('HEARTH_PASSWORD');
const patientName = setting('HEARTH_PATIENT_NAME');
const artifacts = setting('HEARTH_ARTIFACTS');
const chromiumPath = setting('HEARTH_CHROMIUM');

await emptyFolder(artifacts);

const browser = await launchChromium(chromiumPath);
const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
const requested = [];
const problems = [];
context.on('request', (request) => requested.push(request.url()));
context.on('response', (response) => {
  if (response.status() >= 400) problems.push(`${response.status()} ${response.url()}`);
});
context.on('console', (message) => {
  // Failed loads are reported with their URL by the response handler above.
  if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
    problems.push(message.text());
  }
});
context.on('weberror', (error) => problems.push(String(error.error())));
const page = await context.newPage();
let shots = 0;

async function screenshot(target, name) {
  shots += 1;
  const file = join(artifacts, `${String(shots).padStart(2, '0')}-${name}.png`);
  await target.screenshot({ path: file, fullPage: true });
  console.log(`screenshot ${file}`);
}

const ownOrigin = (url) => url.startsWith(`${base}/`) || url.startsWith('data:');

try {
  await step('the docs page loads Swagger UI from the host alone, under its CSP', async () => {
    const response = await page.goto(`${base}/apis/${site}/docs`);
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-security-policy'], /script-src 'self'/);
    await page.locator('.swagger-ui .info .title').first().waitFor({ timeout: 30000 });
    assert.match(await page.locator('.swagger-ui .info .title').first().textContent(), /Standard API/);
    await page.locator('.opblock').first().waitFor();
    const foreign = requested.filter((url) => !ownOrigin(url));
    assert.deepEqual(foreign, [], 'every request goes to the host');
    assert.deepEqual(problems, [], 'no script error and no CSP violation');
    await screenshot(page, 'docs');
  });

  let popup;
  await step('Authorize opens Hearth sign-in in a popup with the docs client and PKCE', async () => {
    await page.locator('.swagger-ui .auth-wrapper button.authorize').click();
    const dialog = page.locator('.modal-ux');
    await dialog.waitFor();
    await dialog.getByText('select all').first().click();
    await screenshot(page, 'authorize-dialog');
    const opened = page.waitForEvent('popup');
    await dialog.locator('.auth-btn-wrapper button.authorize').first().click();
    popup = await opened;
    await popup.waitForLoadState();
    const url = new URL(popup.url());
    assert.equal(url.origin + url.pathname, `${base}/oauth2/${site}/authorize`);
    assert.equal(url.searchParams.get('client_id'), 'hearth-api-docs');
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(url.searchParams.get('code_challenge'), 'a PKCE challenge');
    assert.equal(await popup.locator('h1').textContent(), 'Sign in');
    assert.match(await popup.locator('main').textContent(), /Hearth API docs asks to use your account/);
    await screenshot(popup, 'sign-in');
  });

  await step('signing in shows consent with the scopes in words and raw on a detail line', async () => {
    await popup.getByLabel('User name', { exact: true }).fill(username);
    await popup.getByLabel('Password', { exact: true }).fill(password);
    await popup.getByRole('button', { name: 'Sign in' }).click();
    await popup.waitForURL(`${base}/oauth2/${site}/consent`);
    const text = await popup.locator('main').textContent();
    assert.match(text, /Search patients' demographics/);
    assert.match(text, /Patients/);
    assert.match(text, /user\/patient\.s/);
    assert.equal(await popup.getByLabel('Use the standard API', { exact: true }).isChecked(), true);
    await screenshot(popup, 'consent');
  });

  await step('allowing returns to Swagger UI authorized', async () => {
    const closed = popup.waitForEvent('close');
    await popup.getByRole('button', { name: 'Allow' }).click();
    await closed;
    const dialog = page.locator('.modal-ux');
    const logout = dialog.locator('button', { hasText: 'Logout' }).first();
    await logout.waitFor({ state: 'attached', timeout: 15000 }).catch(async (error) => {
      await screenshot(page, 'not-authorized');
      throw new Error(`${error.message}\ndialog: ${await dialog.textContent()}\nproblems: ${problems}`);
    });
    await screenshot(page, 'authorized');
    await dialog.locator('button.btn-done').first().click();
  });

  await step('Try it out calls GET /patient with the token and shows a 200 with the patient', async () => {
    const operation = page.locator('#operations-patient-get_patient');
    await operation.locator('.opblock-summary').first().click();
    await operation.locator('button.try-out__btn').click();
    const answered = page.waitForResponse((r) => r.url().startsWith(`${base}/apis/${site}/api/patient`));
    await operation.locator('button.execute').click();
    const response = await answered;
    assert.equal(response.status(), 200);
    assert.match(response.request().headers().authorization ?? '', /^Bearer /);
    const status = operation.locator('.live-responses-table tbody .response-col_status').first();
    await status.waitFor();
    assert.match(await status.textContent(), /200/);
    const body = await response.json();
    assert.ok(
      body.data.some((p) => `${p.fname} ${p.lname}` === patientName),
      `${patientName} is listed`,
    );
    const foreign = requested.filter((url) => !ownOrigin(url));
    assert.deepEqual(foreign, [], 'every request went to the host');
    await screenshot(page, 'try-it-out');
  });
} finally {
  await browser.close();
}
finish();
