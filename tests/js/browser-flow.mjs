// A real browser through the authorization pages: headless Chromium (Debian's, driven by
// playwright-core, with JavaScript off since the pages need none) walks sign-in, the
// patient picker and consent to the app's redirect with a code, and a screenshot of each
// page is saved. openid-client builds the request and redeems the code.
//
// Run by tests/tests/js_clients.rs, which starts the server, seeds a staff user and
// patients, passes them in HEARTH_* variables and enables the client when asked.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { join } from 'node:path';
import * as client from 'openid-client';
import { emptyFolder, enableClient, finish, launchChromium, setting, step } from './lib/harness.mjs';

const base = setting('HEARTH_BASE');
const site = setting('HEARTH_SITE');
const username = setting('HEARTH_USERNAME');
const password = setting('HEARTH_PASSWORD');
const patientUuid = setting('HEARTH_PATIENT_UUID');
const patientName = setting('HEARTH_PATIENT_NAME');
const otherPatients = setting('HEARTH_OTHER_PATIENT_NAMES').split(',');
const foreignPatient = setting('HEARTH_FOREIGN_PATIENT_NAME');
const artifacts = setting('HEARTH_ARTIFACTS');
const chromiumPath = setting('HEARTH_CHROMIUM');

const issuer = `${base}/oauth2/${site}`;
const SCOPE = 'openid fhirUser profile launch/patient offline_access api:oemr user/patient.rs';
const UNTICKED = 'profile';
/** How the consent page words UNTICKED (the raw scope is on a detail line below it). */
const UNTICKED_WORDS = 'Read your name and profile';

/** The app's redirect URI: a page on 127.0.0.1 that says it got an answer. */
async function startCallbackServer() {
  const server = createServer((request, response) => {
    const url = new URL(request.url, 'http://127.0.0.1');
    const received = url.searchParams.has('code') ? 'an authorization code' : 'no code';
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(
      '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Callback</title></head>' +
        '<body style="font:16px system-ui,sans-serif;margin:3rem">' +
        `<h1>Back in the app</h1><p>The app received ${received}.</p></body></html>`,
    );
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const callbackServer = await startCallbackServer();
const redirectUri = `http://127.0.0.1:${callbackServer.address().port}/callback`;
await emptyFolder(artifacts);

const browser = await launchChromium(chromiumPath);
process.on('exit', () => callbackServer.close());

const context = await browser.newContext({
  javaScriptEnabled: false,
  viewport: { width: 900, height: 760 },
});
const page = await context.newPage();
let shots = 0;

/** Saves a full-page screenshot named after the step. */
async function screenshot(name) {
  shots += 1;
  const file = join(artifacts, `${String(shots).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot ${file}`);
}

let config;
let verifier;
let state;
let nonce;
let callbackUrl;

try {
  await step('a confidential client registers with openid-client and is enabled', async () => {
    config = await client.dynamicClientRegistration(
      new URL(issuer),
      {
        application_type: 'private',
        client_name: 'Chart viewer',
        redirect_uris: [redirectUri],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: SCOPE,
      },
      undefined,
      { execute: [client.allowInsecureRequests] },
    );
    const meta = config.clientMetadata();
    config = new client.Configuration(
      config.serverMetadata(),
      meta.client_id,
      meta,
      client.ClientSecretBasic(meta.client_secret),
    );
    client.allowInsecureRequests(config);
    await enableClient(site, meta.client_id);
  });

  await step('the sign-in page renders without JavaScript and refuses framing', async () => {
    verifier = client.randomPKCECodeVerifier();
    state = client.randomState();
    nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: SCOPE,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      aud: `${base}/apis/${site}/fhir`,
    });
    const response = await page.goto(url.href);
    assert.equal(response.status(), 200);
    const headers = response.headers();
    assert.equal(headers['x-frame-options'], 'DENY');
    assert.match(headers['content-security-policy'], /frame-ancestors 'none'/);
    assert.equal(await page.locator('h1').textContent(), 'Sign in');
    assert.equal(await page.title(), 'Sign in');
    assert.match(await page.locator('main').textContent(), /Chart viewer asks to use your account/);
    for (const label of ['User name', 'Password', 'E-mail (patients)', 'I am']) {
      assert.equal(await page.getByLabel(label, { exact: true }).count(), 1, `a field labelled ${label}`);
    }
    assert.equal(await page.locator('input[type=hidden][name=csrf_token]').count(), 1, 'a CSRF field');
    await screenshot('sign-in');
  });

  await step('a wrong password keeps the page with one vague error', async () => {
    await page.getByLabel('User name', { exact: true }).fill(username);
    await page.getByLabel('Password', { exact: true }).fill(`${password} nope`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForLoadState();
    assert.equal(await page.locator('h1').textContent(), 'Sign in');
    assert.equal(
      await page.getByRole('alert').textContent(),
      'The user name, password or e-mail is wrong.',
    );
    assert.equal(await page.getByLabel('User name', { exact: true }).inputValue(), username, 'the name is kept');
    assert.equal(await page.getByLabel('Password', { exact: true }).inputValue(), '', 'the password is not');
    await screenshot('sign-in-error');
  });

  await step('signing in as staff with launch/patient shows the patient picker', async () => {
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${issuer}/patient-select`);
    assert.equal(await page.locator('h1').textContent(), 'Choose a patient');
    const rows = await page.locator('ul.patients li span').allTextContents();
    for (const name of [patientName, ...otherPatients]) {
      assert.ok(rows.some((row) => row.startsWith(name)), `${name} is listed: ${rows}`);
    }
    assert.equal(await page.getByRole('button', { name: 'Choose' }).count(), rows.length, 'one Choose button per patient');
    assert.ok(!rows.some((row) => row.startsWith(foreignPatient)), "the other site's patient is not listed");
    await screenshot('patient-picker');
  });

  await step('searching the picker narrows the list', async () => {
    const [, lastName] = patientName.split(' ');
    await page.getByLabel('Name', { exact: true }).fill(lastName);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/patient-select\?q=/);
    const rows = await page.locator('ul.patients li span').allTextContents();
    assert.ok(rows.length >= 1 && rows.every((row) => row.includes(lastName)), `only ${lastName}: ${rows}`);
    for (const other of otherPatients) {
      assert.ok(!rows.some((row) => row.startsWith(other)), `${other} is filtered out`);
    }
    await screenshot('patient-search');
  });

  await step('choosing the patient leads to consent with every scope ticked; one is unticked', async () => {
    await page.locator('ul.patients li', { hasText: patientName }).getByRole('button', { name: 'Choose' }).click();
    await page.waitForURL(`${issuer}/consent`);
    assert.equal(await page.locator('h1').textContent(), 'Allow access?');
    const text = await page.locator('main').textContent();
    assert.match(text, /Chart viewer asks for access as/);
    assert.match(text, new RegExp(`Patient: ${patientName}`));
    const boxes = page.locator('input[type=checkbox][name=scope]');
    const values = await boxes.evaluateAll((inputs) => inputs.map((i) => [i.value, i.checked]));
    assert.deepEqual(values, SCOPE.split(' ').map((s) => [s, true]), 'one ticked box per scope');
    assert.match(text, /Read and search patients' demographics/, 'resource scopes are in words');
    assert.match(text, /Patients/, 'under the heading of their resource');
    const details = await page.locator('.detail code').allTextContents();
    assert.deepEqual(details, SCOPE.split(' '), 'each raw scope on a detail line');
    const profile = page.getByLabel(UNTICKED_WORDS, { exact: true });
    await profile.uncheck();
    assert.equal(await profile.isChecked(), false);
    await screenshot('consent');
  });

  await step('allowing redirects to the app with code, state and iss', async () => {
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((url) => url.href.startsWith(redirectUri));
    const url = new URL(page.url());
    assert.ok(url.searchParams.get('code')?.length >= 32, 'a code');
    assert.equal(url.searchParams.get('state'), state);
    assert.equal(url.searchParams.get('iss'), issuer);
    assert.equal(await page.locator('h1').textContent(), 'Back in the app');
    callbackUrl = url;
    await screenshot('redirect-with-code');
  });

  await step('the code redeems for the ticked scopes and the chosen patient', async () => {
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    });
    const granted = tokens.scope.split(' ');
    assert.ok(!granted.includes(UNTICKED), `${UNTICKED} was unticked: ${tokens.scope}`);
    assert.deepEqual(granted, SCOPE.split(' ').filter((s) => s !== UNTICKED));
    assert.equal(tokens.patient, patientUuid);
    assert.equal(tokens.need_patient_banner, true);
    assert.equal(tokens.smart_style_url, `${issuer}/smart-style.json`);
    const claims = tokens.claims();
    assert.equal(claims.nonce, nonce);
    assert.equal(claims.given_name, undefined, 'no profile claims once profile is unticked');
    const patient = await client.fetchProtectedResource(
      config,
      tokens.access_token,
      new URL(`${base}/apis/${site}/api/patient/${patientUuid}`),
      'GET',
    );
    assert.equal(patient.status, 200);
    assert.equal((await patient.json()).data.uuid, patientUuid, 'the token reads the chosen patient');
  });
} finally {
  await browser.close();
}

finish();
