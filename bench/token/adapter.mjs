// An in-memory storage adapter for oidc-provider that forgets entries only when they
// expire.
//
// oidc-provider's built-in development adapter is an LRU of 1000 entries shared by every
// model: under load, the assertion ids kept for replay detection push registered clients,
// grants and refresh tokens out (requests then fail with invalid_client), and a pushed-out
// `jti` could be replayed. Hearth keeps all of these until they expire, so this adapter
// does too. It is still process memory: a Map lookup per access, no I/O.

const entries = new Map();
const grants = new Map();

// Models whose entries belong to a grant, so revoking the grant removes them.
const grantable = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

function live(key) {
  const entry = entries.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
    entries.delete(key);
    return undefined;
  }
  return entry.payload;
}

// Expired entries are swept every ten seconds, so memory stays bounded by what is live.
setInterval(() => {
  const now = Date.now();
  for (const [key, entry] of entries) {
    if (entry.expiresAt !== undefined && entry.expiresAt <= now) entries.delete(key);
  }
}, 10_000).unref();

export default class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    if (this.model === 'Session') {
      entries.set(`sessionUid:${payload.uid}`, { payload: id });
    }
    if (payload.userCode) {
      entries.set(`userCode:${payload.userCode}`, { payload: id });
    }
    if (grantable.has(this.model) && payload.grantId) {
      const members = grants.get(payload.grantId) ?? [];
      members.push(key);
      grants.set(payload.grantId, members);
    }
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
    entries.set(key, { payload, expiresAt });
  }

  async find(id) {
    return live(this.key(id));
  }

  async findByUid(uid) {
    const id = live(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = live(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = live(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    entries.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of grants.get(grantId) ?? []) entries.delete(key);
    grants.delete(grantId);
  }
}
