// A browser app on another origin calls the API: headless Chromium (Debian's, driven by
// playwright-core) loads a page from a small server on 127.0.0.1 (its own port, so its
// own origin) and fetches from /apis with a bearer token. A bearer token is not a
// CORS-safelisted header, so every such fetch is preflighted by the browser: the fetch
// succeeds only when the preflight and the answer carry the right CORS headers, and a
// site that allows only its registered clients' origins keeps its answers from the page
// until a client registered with that origin is enabled.
//
// Run by tests/tests/js_clients.rs, which starts the server, seeds a patient and passes
// tokens in HEARTH_* variables.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';
import { enableClient, finish, setting, step } from './lib/harness.mjs';

const base = setting('HEARTH_BASE');
const site = setting('HEARTH_SITE');
const registeredSite = setting('HEARTH_OTHER_SITE');
const token = setting('HEARTH_TOKEN');
const otherToken = setting('HEARTH_OTHER_TOKEN');
const chromiumPath = setting('HEARTH_CHROMIUM');

/** The app: one page, served from its own origin. */
const app = createServer((request, response) => {
  response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  response.end('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>App</title></head><body>App</body></html>');
});
await new Promise((resolve) => app.listen(0, '127.0.0.1', resolve));
const appOrigin = `http://127.0.0.1:${app.address().port}`;
process.on('exit', () => app.close());

const browser = await chromium.launch({
  executablePath: chromiumPath,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const page = await (await browser.newContext()).newPage();
await page.goto(`${appOrigin}/`);

/** Runs fetch(url, init) in the page; answers status, body and readable headers, or the error. */
function fetchInPage(url, init) {
  return page.evaluate(async ({ url, init }) => {
    try {
      const response = await fetch(url, init);
      const text = await response.text();
      return {
        status: response.status,
        text,
        requestId: response.headers.get('x-request-id'),
        authenticate: response.headers.get('www-authenticate'),
      };
    } catch (error) {
      return { error: String(error) };
    }
  }, { url, init });
}

const patients = `${base}/apis/${site}/api/patient`;

await step('a preflight from the app origin is answered for any path, without a token', async () => {
  for (const path of ['/api/patient', '/api/no/such/path']) {
    const response = await fetch(`${base}/apis/${site}${path}`, {
      method: 'OPTIONS',
      headers: {
        origin: appOrigin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    assert.equal(response.status, 204, path);
    assert.equal(response.headers.get('access-control-allow-origin'), '*');
    assert.match(response.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match(response.headers.get('access-control-allow-headers') ?? '', /authorization/);
    assert.match(response.headers.get('access-control-allow-headers') ?? '', /content-type/);
    assert.equal(response.headers.get('access-control-allow-credentials'), null, 'never with credentials');
  }
});

await step('Chromium reads the API from another origin with a bearer token (preflighted)', async () => {
  const answer = await fetchInPage(patients, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(answer.error, undefined, answer.error);
  assert.equal(answer.status, 200, answer.text);
  const body = JSON.parse(answer.text);
  assert.equal(body.data.length, 1);
  assert.match(answer.requestId ?? '', /\S/, 'x-request-id is exposed to the page');
});

await step('Chromium writes JSON across origins and reads the 201', async () => {
  const answer = await fetchInPage(patients, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ fname: 'Cors', lname: 'Browser', sex: 'Female', DOB: '1991-02-03' }),
  });
  assert.equal(answer.status, 201, answer.text);
  assert.match(JSON.parse(answer.text).data.uuid, /^[0-9a-f-]{36}$/);
});

await step('error answers reach the page too: 401 with WWW-Authenticate, 404 with a JSON body', async () => {
  const unauthorized = await fetchInPage(patients, { headers: { authorization: 'Bearer not-a-token' } });
  assert.equal(unauthorized.status, 401, unauthorized.text);
  assert.match(unauthorized.authenticate ?? '', /^Bearer/, 'WWW-Authenticate is exposed');
  const missing = await fetchInPage(`${base}/apis/${site}/api/no/such/path`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(missing.status, 404, missing.text);
  assert.equal(JSON.parse(missing.text).error, 'route_not_found');
});

const registered = `${base}/apis/${registeredSite}/api/patient`;

await step('a site that allows only registered origins keeps its answers from an unknown origin', async () => {
  const answer = await fetchInPage(registered, { headers: { authorization: `Bearer ${otherToken}` } });
  assert.match(answer.error ?? '', /TypeError|Failed to fetch/, JSON.stringify(answer));
  const preflight = await fetch(registered, {
    method: 'OPTIONS',
    headers: { origin: appOrigin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
  });
  assert.equal(preflight.headers.get('access-control-allow-origin'), null);
});

await step('once a client registered with the app origin is enabled, the page may read the site', async () => {
  const registration = await fetch(`${base}/oauth2/${registeredSite}/registration`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      application_type: 'private',
      client_name: 'Browser app',
      redirect_uris: [`${appOrigin}/callback`],
      scope: 'openid api:oemr user/patient.rs',
    }),
  });
  const client = await registration.json();
  assert.ok(registration.status === 201, JSON.stringify(client));
  await enableClient(registeredSite, client.client_id);
  // Each server process reads the site's origins again within a second.
  let answer;
  for (let attempt = 0; attempt < 30; attempt += 1) {
    answer = await fetchInPage(registered, { headers: { authorization: `Bearer ${otherToken}` } });
    if (answer.status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.equal(answer.status, 200, JSON.stringify(answer));
  assert.equal(JSON.parse(answer.text).data.length, 1);
});

await browser.close();
finish();
