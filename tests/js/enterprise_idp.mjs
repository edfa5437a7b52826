// oidc-provider as a company identity provider for enterprise-managed authorization (SEP-990),
// for the Cargo tests of the company sign-in (tests/support/oidc.rs).
//
//   node enterprise_idp.mjs --client-id ID --client-secret SECRET --jag-client-id ID
//
// Listens on 127.0.0.1:0 and prints one JSON line: {"url": "http://127.0.0.1:PORT"} (the
// issuer). One confidential native client (any loopback port for /oauth/callback: RFC 8252),
// the development interactions (any login and password; a consent page), refresh tokens with
// `offline_access`, ID tokens signed ES256 with the key its JWKS publishes. The token exchange
// grant (RFC 8693) takes an ID token this provider issued and answers an ID-JAG
// (`typ: oauth-id-jag+jwt`, signed with the same key; `aud` = the requested audience, `resource`,
// `client_id` = --jag-client-id, the broker's client at the servers' authorization servers).
//
// Test controls (plain HTTP on the same port):
//   POST /test/end-sessions     every session ends: its ID tokens are no longer exchanged and its
//                               refresh tokens are refused (invalid_grant)
//   POST /test/expire-id-tokens ID tokens are no longer exchanged; refresh tokens still work
//   GET  /test/counts           {"exchanges": n, "refreshes": n, "sign_ins": n}

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

const arg = (name) => process.argv[process.argv.indexOf(name) + 1];
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag';
const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const { privateKey, publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await jose.exportJWK(privateKey)), kid: 'company-key', alg: 'ES256', use: 'sig' };

const live = { idTokens: new Set(), refreshTokens: new Set() };
const ended = new Set();
const counts = { exchanges: 0, refreshes: 0, sign_ins: 0 };

const provider = new Provider(issuer, {
  clients: [{
    client_id: arg('--client-id'),
    client_secret: arg('--client-secret'),
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/oauth/callback'],
    grant_types: ['authorization_code', 'refresh_token', TOKEN_EXCHANGE],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
  }],
  jwks: { keys: [jwk] },
  features: { devInteractions: { enabled: true } },
  scopes: ['openid', 'offline_access'],
  issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token')
    && code.scopes.has('offline_access'),
  pkce: { required: () => true },
});

provider.registerGrantType(TOKEN_EXCHANGE, async (ctx) => {
  const p = ctx.oidc.params;
  if (p.subject_token_type !== ID_TOKEN || p.requested_token_type !== ID_JAG) {
    throw new errors.InvalidRequest('subject_token_type must be id_token and requested_token_type id-jag');
  }
  if (!p.audience || !p.resource) throw new errors.InvalidRequest('audience and resource are required');
  if (!live.idTokens.has(p.subject_token)) {
    throw new errors.InvalidGrant('the ID token is expired, or its session ended');
  }
  const { payload } = await jose.jwtVerify(p.subject_token, publicKey, {
    issuer, audience: ctx.oidc.client.clientId,
  });
  counts.exchanges += 1;
  const jag = await new jose.SignJWT({ sub: payload.sub, resource: p.resource, client_id: arg('--jag-client-id'), ...(p.scope ? { scope: p.scope } : {}) })
    .setProtectedHeader({ alg: 'ES256', kid: jwk.kid, typ: 'oauth-id-jag+jwt' })
    .setIssuer(issuer).setAudience(p.audience).setIssuedAt().setExpirationTime('5m').setJti(randomUUID())
    .sign(privateKey);
  ctx.body = { access_token: jag, issued_token_type: ID_JAG, token_type: 'N_A', expires_in: 300 };
}, ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'resource', 'scope']);

// After the token endpoint answered: remember what it issued; refuse refreshes of ended sessions.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.oidc?.route !== 'token' || ctx.status !== 200) return;
  const grant = ctx.oidc.params?.grant_type;
  if (grant === 'refresh_token') {
    if (ended.has(ctx.oidc.params.refresh_token)) {
      ctx.status = 400;
      ctx.body = { error: 'invalid_grant', error_description: 'the session ended' };
      return;
    }
    counts.refreshes += 1;
  }
  if (grant === 'authorization_code') counts.sign_ins += 1;
  if (ctx.body?.id_token) live.idTokens.add(ctx.body.id_token);
  if (ctx.body?.refresh_token) live.refreshTokens.add(ctx.body.refresh_token);
});
provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error', err));

const callback = provider.callback();
server.on('request', (req, res) => {
  const reply = (body) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(body)); };
  if (req.method === 'POST' && req.url === '/test/end-sessions') {
    live.refreshTokens.forEach((t) => ended.add(t));
    live.refreshTokens.clear();
    live.idTokens.clear();
    return reply({ ok: true });
  }
  if (req.method === 'POST' && req.url === '/test/expire-id-tokens') {
    live.idTokens.clear();
    return reply({ ok: true });
  }
  if (req.method === 'GET' && req.url === '/test/counts') return reply(counts);
  return callback(req, res);
});
console.log(JSON.stringify({ url: issuer }));
