// The npm oidc-provider, configured for the same token-endpoint work as Hearth, so
// scripts/bench-token can measure both in one run.
//
// What matches Hearth (docs/oauth.md):
// - client_credentials with private_key_jwt only, assertions signed RS384 or ES384, a
//   `jti` never accepted twice (oidc-provider's ReplayDetection), `exp` at most five
//   minutes ahead (checked in assertJwtClientAuthClaimsAndHeader), tokens for 300 s;
// - refresh_token with rotation on every use, and a reused refresh token revokes the
//   grant (oidc-provider does that for consumed tokens); access tokens 1 h, refresh
//   tokens three months;
// - access tokens are JWTs signed RS256 with a 2048-bit RSA key generated at start (as
//   Hearth generates a site key), through resource indicators with accessTokenFormat
//   'jwt'; id_tokens RS256 with the same key;
// - clients register through the RFC 7591 registration endpoint.
//
// What differs: storage is process memory (adapter.mjs: a Map whose entries leave only
// when they expire; oidc-provider's own development adapter is a 1000-entry LRU that
// loses clients, refresh tokens and replay-detection ids under load), where Hearth
// writes every access token, refresh token and assertion `jti` to the site's SQLite
// database. Node runs JavaScript on one thread; crypto goes through WebCrypto, which
// Node runs on its libuv thread pool.
//
// Start: node server.mjs PORT. Bench-only route: POST /bench/refresh-tokens with JSON
// {"client_id", "count", "scope"} answers refresh tokens minted through the provider's
// own Grant and RefreshToken models (what its authorization_code grant stores), so the
// load generator has a pool to refresh without driving login pages.

import { generateKeyPairSync, randomUUID } from 'node:crypto';

import Provider from 'oidc-provider';

import MapAdapter from './adapter.mjs';

const port = Number(process.argv[2] || 0);
if (!port) {
  console.error('usage: node server.mjs PORT');
  process.exit(2);
}
const base = `http://127.0.0.1:${port}`;
const issuer = base;
const resource = `${base}/apis/default`;

// The scopes both servers hand out in the benchmark (Hearth's catalogue has them).
const resourceScopes = 'api:oemr user/patient.rs system/Patient.rs system/*.$export';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: randomUUID() };

const assertionMaxLifetime = 300;
const oidcScopeNames = ['openid', 'offline_access'];

const configuration = {
  adapter: MapAdapter,
  jwks: { keys: [signingKey] },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  // Client metadata may only name scopes listed here; access tokens carry those of them
  // that the resource server (below) knows.
  scopes: ['openid', 'offline_access', ...resourceScopes.split(' ')],
  clientAuthMethods: ['client_secret_basic', 'private_key_jwt'],
  enabledJWA: {
    clientAuthSigningAlgValues: ['RS384', 'ES384'],
    idTokenSigningAlgValues: ['RS256'],
  },
  clientDefaults: {
    id_token_signed_response_alg: 'RS256',
  },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: 3600,
    ClientCredentials: 300,
    IdToken: 3600,
    RefreshToken: 90 * 24 * 3600,
    Grant: 90 * 24 * 3600,
  },
  async assertJwtClientAuthClaimsAndHeader(_ctx, claims) {
    const now = Math.floor(Date.now() / 1000);
    if (claims.exp > now + assertionMaxLifetime + 5) {
      throw new Provider.errors.InvalidClientAuth('exp is more than five minutes ahead');
    }
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    registration: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== resource) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: resourceScopes,
          audience: resource,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
};

const provider = new Provider(issuer, configuration);
provider.proxy = false;

// Mints `count` refresh tokens for `client_id`, each in its own grant, as the
// authorization_code grant would store them after a sign-in with `scope`.
async function mintRefreshTokens({ client_id: clientId, count, scope }) {
  const client = await provider.Client.find(clientId);
  if (!client) {
    throw new Error(`unknown client ${clientId}`);
  }
  const oidcScopes = scope.split(' ').filter((s) => oidcScopeNames.includes(s));
  const apiScopes = scope.split(' ').filter((s) => !oidcScopeNames.includes(s));
  const tokens = [];
  for (let i = 0; i < count; i += 1) {
    const accountId = `bench-user-${i}`;
    const grant = new provider.Grant({ accountId, clientId });
    grant.addOIDCScope(oidcScopes.join(' '));
    grant.addResourceScope(resource, apiScopes.join(' '));
    const grantId = await grant.save();
    const refreshToken = new provider.RefreshToken({
      accountId,
      authTime: Math.floor(Date.now() / 1000),
      client,
      grantId,
      gty: 'authorization_code',
      resource,
      rotations: 0,
      scope,
    });
    tokens.push(await refreshToken.save());
  }
  return tokens;
}

provider.use(async (ctx, next) => {
  if (ctx.path !== '/bench/refresh-tokens' || ctx.method !== 'POST') {
    return next();
  }
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  ctx.type = 'application/json';
  ctx.body = JSON.stringify({ refresh_tokens: await mintRefreshTokens(request) });
  return undefined;
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ${issuer} listening`);
});
