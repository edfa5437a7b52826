// oidc-provider (a certified OpenID provider) requiring DPoP-bound tokens, as the authorization
// server of a real MCP upstream that checks them, for the Cargo tests of DPoP (RFC 9449)
// (tests/upstream_dpop.rs).
//
//   node dpop_op.mjs
//
// Prints one JSON line: {"url": "http://127.0.0.1:PORT/mcp", "issuer": "http://127.0.0.1:PORT2"}.
// The same upstream answers at `/m2m/mcp` too, for machine tokens (its own resource metadata,
// scope `mcp:read`).
//
// The provider: device flow (no browser needed), DPoP with server nonces required at the token
// endpoint (`nonceSecret`, `requireNonce`), the public client `broker-dpop` and the confidential
// client `broker-dpop-m2m` (client credentials, secret `m2m-secret`), both registered with
// `dpop_bound_access_tokens: true` (a token request without a proof is refused). Tokens are opaque
// and bound to the proof's key (`jkt`).
//
// The MCP upstream (the SDK v1's `McpServer`, stateless; tool `echo`, which names the token's key) takes only DPoP-bound
// tokens: `Authorization: DPoP <token>` and a proof whose signature, `typ`, `htm`, `htu`, `iat`,
// `ath` and `jti` (no replay) it checks, with its own nonce (401 `use_dpop_nonce` + `DPoP-Nonce`
// until a proof carries it); then it looks the token up at the provider (in process, as
// introspection would) and checks that the token's `jkt` is the proof key's thumbprint.
// `GET /test/stats` says what it saw; `POST /test/rotate-nonce` changes its nonce.

import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import { jwtVerify, EmbeddedJWK, calculateJwkThumbprint } from 'jose';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const listen = async (server) => {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${server.address().port}`;
};

const opServer = http.createServer();
const rsServer = http.createServer();
const issuer = await listen(opServer);
const base = await listen(rsServer);
const mcpUrl = `${base}/mcp`;
/** The two resources: a person's (device sign-in, refresh) and a machine's (client credentials). */
const resources = {
  '/mcp': ['openid', 'offline_access', 'mcp:read'],
  '/m2m/mcp': ['mcp:read'],
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'broker-dpop',
    token_endpoint_auth_method: 'none',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
    dpop_bound_access_tokens: true,
  }, {
    client_id: 'broker-dpop-m2m',
    client_secret: 'm2m-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'mcp:read',
    dpop_bound_access_tokens: true,
  }],
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    clientCredentials: { enabled: true },
    dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, _client, oneOf) => oneOf,
      getResourceServerInfo: () => ({ scope: 'mcp:read', accessTokenFormat: 'opaque' }),
      useGrantedResource: () => true,
    },
  },
  scopes: ['openid', 'offline_access', 'mcp:read'],
});
provider.on('device_authorization.success', (_ctx, body) => {
  body.interval = 1;
});
provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error', err));
opServer.on('request', provider.callback());

const stats = { verified: 0, nonceChallenges: 0, refused: [], jkts: [] };
let rsNonce = randomBytes(16).toString('base64url');
const seenJti = new Set();

/** The resource's DPoP check; `{ jkt }` when the request may go on, else the answer to send. */
async function checkDpop(req, path) {
  const resourceUrl = `${base}${path}`;
  const prmUrl = `${base}/.well-known/oauth-protected-resource${path}`;
  const refuse = (why, error = 'invalid_token') => {
    stats.refused.push(why);
    return { status: 401, challenge: `DPoP error="${error}", error_description="${why}", algs="ES256"` };
  };
  const auth = req.headers.authorization ?? '';
  const space = auth.indexOf(' ');
  if (space < 0) {
    return { status: 401, challenge: `DPoP algs="ES256", resource_metadata="${prmUrl}"` };
  }
  const [scheme, token] = [auth.slice(0, space), auth.slice(space + 1).trim()];
  if (scheme.toLowerCase() !== 'dpop') return refuse(`scheme ${scheme}: only DPoP-bound tokens are taken`);
  const proof = req.headers.dpop;
  if (typeof proof !== 'string' || proof.includes(',')) return refuse('one DPoP proof is needed', 'invalid_dpop_proof');
  let verified;
  try {
    verified = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256'] });
  } catch (e) {
    return refuse(`proof does not verify: ${e.message}`, 'invalid_dpop_proof');
  }
  const { payload, protectedHeader } = verified;
  const ath = createHash('sha256').update(token).digest('base64url');
  const problems = [
    payload.htm !== req.method && `htm ${payload.htm}`,
    payload.htu !== resourceUrl && `htu ${payload.htu}`,
    Math.abs(Date.now() / 1000 - payload.iat) > 60 && 'iat not recent',
    payload.ath !== ath && 'ath does not match the token',
    (typeof payload.jti !== 'string' || seenJti.has(payload.jti)) && 'jti missing or replayed',
  ].filter(Boolean);
  if (problems.length) return refuse(problems.join('; '), 'invalid_dpop_proof');
  seenJti.add(payload.jti);
  if (payload.nonce !== rsNonce) {
    stats.nonceChallenges++;
    return {
      status: 401,
      challenge: 'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"',
      nonce: rsNonce,
    };
  }
  const held = (await provider.AccessToken.find(token)) ?? (await provider.ClientCredentials.find(token));
  if (!held || held.isExpired) return refuse('unknown or expired token');
  const jkt = await calculateJwkThumbprint(protectedHeader.jwk);
  if (held.jkt !== jkt) return refuse('the token is not bound to the proof key (cnf.jkt)');
  stats.verified++;
  stats.jkts.push(jkt);
  return { jkt };
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

rsServer.on('request', async (req, res) => {
  const path = new URL(req.url, base).pathname;
  const prm = path.replace(/^\/\.well-known\/oauth-protected-resource/, '');
  if (prm !== path && resources[prm]) {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({
      resource: `${base}${prm}`,
      authorization_servers: [issuer],
      scopes_supported: resources[prm],
      dpop_bound_access_tokens_required: true,
      dpop_signing_alg_values_supported: ['ES256'],
    }));
    return;
  }
  if (path === '/test/stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(stats));
    return;
  }
  if (path === '/test/rotate-nonce' && req.method === 'POST') {
    rsNonce = randomBytes(16).toString('base64url');
    res.end();
    return;
  }
  if (!resources[path]) {
    res.statusCode = 404;
    res.end();
    return;
  }
  const checked = await checkDpop(req, path);
  if (!checked.jkt) {
    res.statusCode = checked.status;
    res.setHeader('www-authenticate', checked.challenge);
    if (checked.nonce) res.setHeader('dpop-nonce', checked.nonce);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ error: 'unauthorized' }));
    return;
  }
  if (req.method !== 'POST') {
    res.statusCode = 405;
    res.setHeader('allow', 'POST');
    res.end();
    return;
  }
  const mcp = new McpServer({ name: 'dpop-upstream', version: '1.0.0' });
  const echo = { description: 'Returns its text and the key the token is bound to', inputSchema: { text: z.string() } };
  mcp.registerTool('echo', echo, async ({ text }) => ({
    content: [{ type: 'text', text: `${text} (DPoP-bound to ${checked.jkt})` }],
  }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => {
    transport.close();
    mcp.close();
  });
  await mcp.connect(transport);
  await transport.handleRequest(req, res, await readJson(req));
});

console.log(JSON.stringify({ url: mcpUrl, issuer }));
