// openid-client (a certified OpenID Connect relying party) against the running server:
// discovery, dynamic registration, authorization code + PKCE with the sign-in and consent
// forms driven over HTTP, ID token validation, refresh, userinfo, introspection,
// revocation, and client_credentials with private_key_jwt (RS384 and ES384 keys).
//
// Run by tests/tests/js_clients.rs, which starts the server, seeds a staff user and a
// patient, passes them in HEARTH_* variables and enables clients when asked.

import assert from 'node:assert/strict';
import * as client from 'openid-client';
import {
  UserAgent,
  assertPageHeaders,
  enableClient,
  finish,
  forms,
  heading,
  hidden,
  setting,
  step,
} from './lib/harness.mjs';

const base = setting('HEARTH_BASE');
const site = setting('HEARTH_SITE');
const otherSite = setting('HEARTH_OTHER_SITE');
const username = setting('HEARTH_USERNAME');
const password = setting('HEARTH_PASSWORD');
const userUuid = setting('HEARTH_USER_UUID');
const patientUuid = setting('HEARTH_PATIENT_UUID');

const issuer = `${base}/oauth2/${site}`;
const api = `${base}/apis/${site}`;
// The test server is plain HTTP on 127.0.0.1; openid-client refuses that unless told.
const insecure = { execute: [client.allowInsecureRequests] };
const REDIRECT = 'https://rp.example/callback';
const SCOPE = 'openid fhirUser profile email offline_access api:oemr user/patient.rs';
const SYSTEM_SCOPE = 'system/Patient.rs system/*.$export';

let config; // the confidential staff client
let tokens; // the authorization code grant's answer
let refreshed; // the refresh grant's answer

/**
 * Fails unless `promise` rejects with the OAuth error `code` and HTTP `status`. A 401
 * carries a WWW-Authenticate challenge, which openid-client reports as its own error
 * with the response attached; the RFC 6749 body is read from that.
 */
async function rejectsWith(promise, code, status) {
  let caught;
  await assert.rejects(promise, (error) => {
    caught = error;
    return true;
  });
  assert.equal(caught.status, status, `HTTP status (${caught.message})`);
  if (caught instanceof client.WWWAuthenticateChallengeError) {
    assert.ok(caught.cause.length > 0, 'a challenge');
    const body = await caught.response.json();
    assert.equal(body.error, code, `error code (${JSON.stringify(body)})`);
    assert.equal(typeof body.error_description, 'string');
  } else {
    assert.equal(caught.error, code, `error code (${caught.message})`);
    assert.equal(typeof caught.error_description, 'string');
  }
}

/** An introspection answer for a dead token: `{"active": false}` and nothing else. */
function assertInactive(answer) {
  assert.deepEqual(Object.keys(answer), ['active']);
  assert.equal(answer.active, false);
}

/** GETs an API URL with an access token through openid-client. */
async function apiGet(url, accessToken) {
  const response = await client.fetchProtectedResource(config, accessToken, new URL(url), 'GET');
  return { status: response.status, body: await response.text() };
}

await step('discovery: the issuer and every endpoint derive from the public URL, per site', async () => {
  const found = await client.discovery(new URL(issuer), 'not-registered-yet', undefined, client.None(), insecure);
  const meta = found.serverMetadata();
  assert.equal(meta.issuer, issuer);
  for (const endpoint of [
    'authorization_endpoint',
    'token_endpoint',
    'jwks_uri',
    'registration_endpoint',
    'introspection_endpoint',
    'revocation_endpoint',
    'userinfo_endpoint',
    'end_session_endpoint',
  ]) {
    assert.ok(meta[endpoint]?.startsWith(`${issuer}/`), `${endpoint} = ${meta[endpoint]}`);
  }
  assert.ok(found.serverMetadata().supportsPKCE('S256'), 'PKCE S256 is advertised');
  assert.equal(meta.authorization_response_iss_parameter_supported, true);
  assert.deepEqual(meta.id_token_signing_alg_values_supported, ['RS256']);
  for (const method of ['client_secret_basic', 'private_key_jwt']) {
    assert.ok(meta.token_endpoint_auth_methods_supported.includes(method), method);
  }
  const other = await client.discovery(new URL(`${base}/oauth2/${otherSite}`), 'x', undefined, client.None(), insecure);
  assert.equal(other.serverMetadata().issuer, `${base}/oauth2/${otherSite}`);
  assert.equal(other.serverMetadata().token_endpoint, `${base}/oauth2/${otherSite}/token`);
});

await step('dynamic registration of a confidential client (client_secret_basic)', async () => {
  const registered = await client.dynamicClientRegistration(
    new URL(issuer),
    {
      application_type: 'private',
      client_name: 'openid-client RP',
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: SCOPE,
      contacts: ['ops@rp.example'],
    },
    undefined,
    insecure,
  );
  const meta = registered.clientMetadata();
  assert.match(meta.client_id, /\S{10,}/);
  assert.ok(meta.client_secret?.length >= 32, 'a secret is issued');
  assert.equal(meta.token_endpoint_auth_method, 'client_secret_basic');
  assert.deepEqual(meta.redirect_uris, [REDIRECT]);
  assert.equal(meta.scope, SCOPE);
  assert.ok(meta.registration_access_token, 'a registration access token');
  assert.ok(meta.registration_client_uri?.startsWith(`${issuer}/client/`), meta.registration_client_uri);
  // Authenticate as registered: HTTP Basic with the issued secret.
  config = new client.Configuration(
    registered.serverMetadata(),
    meta.client_id,
    meta,
    client.ClientSecretBasic(meta.client_secret),
  );
  client.allowInsecureRequests(config);
  // ID tokens are checked against the site's JWKS too, not only their claims.
  client.enableNonRepudiationChecks(config);
  // user/ scopes: the client starts disabled; an administrator enables it.
  const authorizeUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
    state: 'disabled-check',
  });
  // A client no administrator enabled is never redirected to, even with an error
  // (RFC 9700 section 4.11): the browser gets a page.
  const refused = await fetch(authorizeUrl, { redirect: 'manual' });
  assert.equal(refused.status, 400);
  assert.equal(refused.headers.get('location'), null, 'no redirect to a disabled client');
  assert.match(await refused.text(), /not enabled/, 'the page says why');
  await enableClient(site, meta.client_id);
});

await step('authorization code + PKCE: sign-in and consent forms over HTTP, ID token validated', async () => {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizeUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    aud: `${api}/fhir`,
  });
  assert.equal(authorizeUrl.origin + authorizeUrl.pathname, `${issuer}/authorize`);

  const agent = new UserAgent();
  const login = await agent.get(authorizeUrl.href);
  assert.equal(login.status, 200, login.body);
  assertPageHeaders(login.headers, 'the sign-in page');
  assert.equal(heading(login.body), 'Sign in');
  assert.ok(login.body.includes('openid-client RP'), 'the page names the client');
  const cookie = agent.cookie('hearth_authz');
  assert.ok(cookie, 'a sign-in session cookie');
  assert.equal(cookie.path, `/oauth2/${site}/`, 'the cookie is scoped to the site');
  assert.ok('httponly' in cookie.attrs, 'HttpOnly');
  assert.equal(cookie.attrs.samesite, 'Lax');
  const [loginForm] = forms(login.body);
  assert.equal(loginForm.method, 'post');
  assert.equal(loginForm.action, `/oauth2/${site}/login`);
  const csrf = hidden(loginForm, 'csrf_token');
  const fieldNames = loginForm.inputs.map((i) => i.name);
  for (const name of ['username', 'password', 'email']) assert.ok(fieldNames.includes(name), name);
  const loginUrl = new URL(loginForm.action, authorizeUrl).href;

  const forged = await agent.post(loginUrl, [
    ['csrf_token', 'x'.repeat(43)],
    ['user_role', 'users'],
    ['username', username],
    ['password', password],
  ]);
  assert.equal(forged.status, 403, 'a form without the page CSRF token is refused');

  const signedIn = await agent.post(loginUrl, [
    ['csrf_token', csrf],
    ['user_role', 'users'],
    ['username', username],
    ['password', password],
    ['email', ''],
  ]);
  assert.equal(signedIn.status, 303, signedIn.body);
  const consentUrl = new URL(signedIn.headers.get('location'), loginUrl).href;
  assert.equal(consentUrl, `${issuer}/consent`, 'no launch/patient: straight to consent');

  const consent = await agent.get(consentUrl);
  assert.equal(consent.status, 200, consent.body);
  assertPageHeaders(consent.headers, 'the consent page');
  assert.equal(heading(consent.body), 'Allow access?');
  const [consentForm] = forms(consent.body);
  assert.equal(consentForm.action, `/oauth2/${site}/consent`);
  const offered = consentForm.inputs.filter((i) => i.type === 'checkbox' && i.name === 'scope');
  assert.deepEqual(offered.map((i) => i.value), SCOPE.split(' '), 'one checkbox per requested scope');
  assert.ok(offered.every((i) => 'checked' in i), 'all ticked at first');
  const allow = consentForm.buttons.find((b) => b.value === 'allow');
  assert.ok(allow && consentForm.buttons.some((b) => b.value === 'deny'), 'Allow and Deny');
  const redirect = await agent.post(new URL(consentForm.action, consentUrl).href, [
    ['csrf_token', hidden(consentForm, 'csrf_token')],
    ...offered.map((i) => ['scope', i.value]),
    [allow.name, allow.value],
  ]);
  assert.equal(redirect.status, 303, redirect.body);
  const callback = new URL(redirect.headers.get('location'));
  assert.equal(callback.origin + callback.pathname, REDIRECT);
  assert.equal(callback.searchParams.get('iss'), issuer, 'RFC 9207 iss');
  assert.equal(agent.cookie('hearth_authz'), undefined, 'the session cookie is cleared');

  // openid-client checks state, iss, the code exchange, and the ID token (signature,
  // iss, aud, exp, iat, nonce).
  tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.equal(tokens.scope, SCOPE);
  assert.equal(tokens.expires_in, 3600);
  assert.ok(tokens.refresh_token, 'offline_access gives a refresh token');
  const claims = tokens.claims();
  assert.equal(claims.iss, issuer);
  assert.equal(claims.aud, config.clientMetadata().client_id);
  assert.equal(claims.sub, userUuid);
  assert.equal(claims.nonce, nonce);
  assert.equal(typeof claims.auth_time, 'number');
  assert.equal(claims.fhirUser, `${api}/fhir/Person/${userUuid}`);
  assert.equal(claims.preferred_username, username);

  const patients = await apiGet(`${api}/api/patient`, tokens.access_token);
  assert.equal(patients.status, 200, patients.body);
  assert.ok(patients.body.includes(patientUuid), 'the API answers with the seeded patient');
});

await step('userinfo answers the ID token subject', async () => {
  const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub);
  assert.equal(info.sub, userUuid);
  assert.equal(info.fhirUser, `${api}/fhir/Person/${userUuid}`);
  assert.equal(info.preferred_username, username);
});

await step('refresh: a new access token and a rotated refresh token', async () => {
  refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.notEqual(refreshed.access_token, tokens.access_token);
  assert.ok(refreshed.refresh_token, 'a new refresh token');
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token, 'rotation');
  assert.equal(refreshed.scope, SCOPE);
  assert.equal(refreshed.claims()?.sub, userUuid, 'the refreshed ID token names the same user');
  const narrowed = await client.refreshTokenGrant(config, refreshed.refresh_token, { scope: 'openid api:oemr user/patient.rs offline_access' });
  assert.equal(narrowed.scope, 'openid api:oemr user/patient.rs offline_access', 'a refresh may narrow');
  refreshed = narrowed;
  await rejectsWith(
    client.refreshTokenGrant(config, refreshed.refresh_token, { scope: 'openid user/patient.cruds' }),
    'invalid_scope',
    400,
  );
});

await step('introspection reports the live tokens of this client', async () => {
  const access = await client.tokenIntrospection(config, refreshed.access_token);
  assert.equal(access.active, true);
  assert.equal(access.client_id, config.clientMetadata().client_id);
  assert.equal(access.scope, refreshed.scope);
  assert.equal(access.sub, userUuid);
  assert.equal(access.username, username);
  assert.equal(access.iss, issuer);
  assert.ok(access.exp > Date.now() / 1000, 'exp is ahead');
  const refresh = await client.tokenIntrospection(config, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
  assert.equal(refresh.active, true);
  assert.equal(refresh.client_id, config.clientMetadata().client_id);
  const unknown = await client.tokenIntrospection(config, 'no-such-token');
  assertInactive(unknown);
});

await step('revocation: introspection turns inactive and the API answers 401', async () => {
  assert.equal((await apiGet(`${api}/api/patient`, refreshed.access_token)).status, 200);
  await client.tokenRevocation(config, refreshed.access_token, { token_type_hint: 'access_token' });
  const introspected = await client.tokenIntrospection(config, refreshed.access_token);
  assertInactive(introspected);
  // The API's 401 carries a Bearer challenge, which openid-client raises as an error.
  await assert.rejects(apiGet(`${api}/api/patient`, refreshed.access_token), (error) => {
    assert.ok(error instanceof client.WWWAuthenticateChallengeError, error.message);
    assert.equal(error.status, 401);
    assert.equal(error.cause[0].scheme, 'bearer');
    assert.equal(error.cause[0].parameters.error, 'invalid_token');
    return true;
  });

  await client.tokenRevocation(config, refreshed.refresh_token);
  assertInactive(await client.tokenIntrospection(config, refreshed.refresh_token));
  await rejectsWith(client.refreshTokenGrant(config, refreshed.refresh_token), 'invalid_grant', 400);
});

/**
 * The status of an API GET with `accessToken`; openid-client raises answers that carry a
 * WWW-Authenticate challenge, so their status is read from the error.
 */
async function apiStatus(configuration, accessToken, url) {
  try {
    const response = await client.fetchProtectedResource(configuration, accessToken, new URL(url), 'GET');
    await response.body?.cancel();
    return response.status;
  } catch (error) {
    if (error instanceof client.WWWAuthenticateChallengeError) return error.status;
    throw error;
  }
}

/** A key pair for signing client assertions, and its public JWK. */
async function signingKey(kid, algorithm) {
  const { privateKey, publicKey } = await crypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const jwk = await crypto.subtle.exportKey('jwk', publicKey);
  delete jwk.key_ops;
  delete jwk.ext;
  return { privateKey, jwk: { ...jwk, kid, use: 'sig' } };
}

await step('client_credentials with private_key_jwt, RS384 and ES384 keys registered as jwks', async () => {
  const rs = await signingKey('rs384-key', {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-384',
  });
  const es = await signingKey('es384-key', { name: 'ECDSA', namedCurve: 'P-384' });
  const registered = await client.dynamicClientRegistration(
    new URL(issuer),
    {
      application_type: 'private',
      client_name: 'openid-client backend service',
      redirect_uris: ['https://rp.example/none'],
      token_endpoint_auth_method: 'private_key_jwt',
      scope: SYSTEM_SCOPE,
      jwks: { keys: [rs.jwk, es.jwk] },
    },
    client.PrivateKeyJwt({ key: rs.privateKey, kid: rs.jwk.kid }),
    insecure,
  );
  const meta = registered.clientMetadata();
  assert.equal(meta.client_secret, undefined, 'private_key_jwt clients get no secret');
  assert.equal(meta.jwks.keys.length, 2);
  await rejectsWith(client.clientCredentialsGrant(registered, { scope: 'system/Patient.rs' }), 'invalid_client', 401);
  await enableClient(site, meta.client_id);

  const withEs = new client.Configuration(
    registered.serverMetadata(),
    meta.client_id,
    meta,
    client.PrivateKeyJwt({ key: es.privateKey, kid: es.jwk.kid }),
  );
  client.allowInsecureRequests(withEs);
  for (const [alg, service] of [['RS384', registered], ['ES384', withEs]]) {
    const granted = await client.clientCredentialsGrant(service, { scope: 'system/Patient.rs' });
    assert.equal(granted.token_type.toLowerCase(), 'bearer', alg);
    assert.equal(granted.scope, 'system/Patient.rs', alg);
    assert.equal(granted.expires_in, 300, alg);
    assert.equal(granted.refresh_token, undefined, `${alg}: no refresh token`);
    assert.equal(granted.id_token, undefined, `${alg}: no ID token`);
    const introspected = await client.tokenIntrospection(service, granted.access_token);
    assert.equal(introspected.active, true, alg);
    assert.equal(introspected.client_id, meta.client_id, alg);
    assert.equal(introspected.scope, 'system/Patient.rs', alg);
    // The resource server knows the token: the standard API refuses a system token for
    // its role (403), not for its validity (401).
    assert.equal(await apiStatus(service, granted.access_token, `${api}/api/patient`), 403, alg);
  }
  const everything = await client.clientCredentialsGrant(withEs);
  assert.equal(everything.scope, SYSTEM_SCOPE, 'no scope: every registered system/ scope');

  // The same client on the other site is unknown: clients are per site.
  const elsewhere = await client.discovery(
    new URL(`${base}/oauth2/${otherSite}`),
    meta.client_id,
    meta,
    client.PrivateKeyJwt({ key: rs.privateKey, kid: rs.jwk.kid }),
    insecure,
  );
  await rejectsWith(client.clientCredentialsGrant(elsewhere, { scope: 'system/Patient.rs' }), 'invalid_client', 401);
});

finish();
