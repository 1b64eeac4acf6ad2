// A real OpenID Connect provider for the integration tests, built on the certified `oidc-provider` (v9).
//   node tests/oidc/provider.mjs CONFIG.json
// CONFIG: {"port", "host"?, "issuer": "http://<host>:<port>", "clients": [{client_id, client_secret, redirect_uris, ...}],
//          "accounts": {"<login>": {"password", "sub"?, "claims": {...}}}, "access_token_ttl", "refresh_token_ttl"}
//         An account's `sub` is its login name unless it names one (real providers give opaque, stable ones).
//         `host`: the address it listens on (default 127.0.0.1; the test cluster's pods reach the host at 10.88.0.1).
// Prints "listening <issuer>" when ready; errors go to stderr; SIGTERM/SIGINT stop it. Everything lives in memory.
//
// Choices (see also tests/integration/oidc.py):
// - clients are static and confidential (client_secret_post), code flow + refresh_token; PKCE S256 is accepted.
// - consent is never asked: loadExistingGrant grants every requested OIDC scope/claim to the logged-in account.
// - every code exchange issues a refresh token (no offline_access needed); refresh tokens are NOT rotated (the same
//   one stays valid until refresh_token_ttl or revocation) and do not depend on the provider's browser session.
//   Revoking a refresh token revokes its whole grant (library default), including the access tokens.
// - own interaction pages (devInteractions off): a login form and a Deny button. The provider's browser session
//   means a second authorization with the same cookie jar skips the form (SSO), like a real IdP.
// - plain HTTP on 127.0.0.1 works without special settings: cookies get `secure` only on https requests.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

// ESM does not resolve bare imports from outside a node_modules tree, so load the package by its path.
const modules = process.env.DAAS_NODE_MODULES || '/opt/jupyterhub-daas/node/node_modules';
const pkgDir = path.join(modules, 'oidc-provider');
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
const entry = typeof pkg.exports === 'string' ? pkg.exports : pkg.exports?.['.']?.import ?? pkg.exports?.['.'] ?? pkg.main;
const { default: Provider } = await import(pathToFileURL(path.join(pkgDir, entry)).href);

const accounts = config.accounts || {};
const subjectOf = (login) => accounts[login].sub ?? login;
const bySubject = new Map(Object.keys(accounts).map((login) => [subjectOf(login), accounts[login]]));
const accessTtl = config.access_token_ttl ?? 300;
const refreshTtl = config.refresh_token_ttl ?? 3600;

// Keys are generated locally at start-up: an RSA key for RS256 ID tokens, random cookie-signing keys.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256' };

const ownTokenOnly = async (ctx, client, token) => token.clientId === client.clientId;

const provider = new Provider(config.issuer, {
  clients: config.clients.map((client) => ({
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
    ...client,
  })),
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups', 'eduperson_entitlement'],
  claims: {
    openid: ['sub'],
    // uid, uidNumber, gidNumber, gidNumbers: site attributes, as a Keycloak LDAP mapper adds them
    profile: ['preferred_username', 'name', 'uid', 'uidNumber', 'gidNumber', 'gidNumbers'],
    email: ['email'],
    groups: ['groups'],
    eduperson_entitlement: ['eduperson_entitlement'], // the scope Umbrella/eduTEAMS uses
  },
  conformIdTokenClaims: false, // scope claims go into the ID token too, not only into userinfo
  async findAccount(ctx, sub) {
    const account = bySubject.get(sub);
    if (!account) return undefined;
    return { accountId: sub, claims: async () => ({ ...account.claims, sub }) };
  },
  // Skip consent: extend (or create) the grant with whatever the request asks for.
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
    let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
    if (!grant || grant.accountId !== oidc.account.accountId) {
      grant = new oidc.provider.Grant({ accountId: oidc.account.accountId, clientId: oidc.client.clientId });
    }
    if (oidc.requestParamOIDCScopes.size) grant.addOIDCScope(oidc.requestParamOIDCScopes);
    if (oidc.requestParamClaims.size) grant.addOIDCClaims(oidc.requestParamClaims);
    await grant.save();
    return grant;
  },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: false,
  expiresWithSession: async () => false,
  pkce: { required: () => false }, // accepted (S256) when sent, required only for public clients we don't have
  clockTolerance: 0, // default 15 s would keep expired opaque access tokens valid (tests use TTLs of ~3 s)
  ttl: {
    AccessToken: accessTtl,
    IdToken: accessTtl,
    RefreshToken: refreshTtl,
    AuthorizationCode: 60,
    Interaction: 3600,
    Session: Math.max(refreshTtl, 3600),
    Grant: Math.max(refreshTtl, 3600),
  },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true, allowedPolicy: ownTokenOnly },
    introspection: { enabled: true, allowedPolicy: ownTokenOnly },
    userinfo: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  interactions: { url: async (ctx, interaction) => `/interaction/${interaction.uid}` },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><body><h1>OIDC error</h1><pre>${escape(JSON.stringify(out, null, 2))}</pre></body></html>`;
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, details, error) {
  const client = escape(details.params.client_id);
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sign in</title></head><body>
<h1>Sign in to continue to ${client}</h1>
${error ? `<p class="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
  <label>Username <input name="username" autofocus></label>
  <label>Password <input name="password" type="password"></label>
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${uid}/abort"><button type="submit">Deny</button></form>
</body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, html) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(html);
}

// Our interaction routes; everything else is the provider's Koa app.
async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'interaction mismatch');
  if (req.method === 'GET' && !action) {
    if (details.prompt.name === 'login') return send(res, 200, loginPage(uid, details));
    // Any other prompt (consent for a native client, say): grant it without asking.
    const grant = await (details.grantId ? provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id }));
    if (details.params.scope) grant.addOIDCScope(details.params.scope);
    return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } });
  }
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const username = form.get('username') || '';
    const account = Object.hasOwn(accounts, username) ? accounts[username] : undefined;
    if (!account || account.password !== form.get('password')) {
      return send(res, 200, loginPage(uid, details, 'Invalid username or password'));
    }
    const login = { accountId: subjectOf(username) };
    return provider.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'abort') {
    const result = { error: 'access_denied', error_description: 'The user denied access' };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  return send(res, 405, 'method not allowed');
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  const match = /^\/interaction\/([\w-]+)(?:\/(login|abort))?\/?(?:\?.*)?$/.exec(req.url);
  if (!match) return callback(req, res);
  interaction(req, res, match[1], match[2]).catch((err) => {
    console.error('interaction error', err);
    if (!res.headersSent) send(res, 400, `<p>${escape(err.message)}</p>`);
    else res.end();
  });
});

server.listen(config.port, config.host ?? '127.0.0.1', () => console.log(`listening ${config.issuer}`));
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
