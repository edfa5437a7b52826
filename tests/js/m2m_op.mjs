// oidc-provider (a certified OpenID provider) as the authorization server of a machine-to-machine
// MCP upstream, for the Cargo tests of `private_key_jwt` (tests/upstream/upstream_m2m/keys.rs).
//
//   node m2m_op.mjs
//
// Listens on 127.0.0.1:0 and prints one JSON line: {"url": "http://127.0.0.1:PORT"} (the issuer).
// The same server is the MCP upstream at /mcp (a stateless SDK v1 `McpServer` with `echo`),
// accepting only client-credentials access tokens this provider issued for it (RFC 8707
// resource = the /mcp URL), and names the provider in its RFC 9728 metadata. The only client
// authentication is `private_key_jwt`; clients are registered through dynamic registration
// (`POST /reg`, what the test does with the broker's public key as an administrator would) and
// all get the client_id `broker-m2m`.

import http from 'node:http';
import express from 'express';
import { z } from 'zod';
import Provider from 'oidc-provider';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
const mcpUrl = `${issuer}/mcp`;

const provider = new Provider(issuer, {
  clientAuthMethods: ['private_key_jwt'],
  features: {
    clientCredentials: { enabled: true },
    registration: { enabled: true, idFactory: () => 'broker-m2m' },
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, _client, oneOf) => oneOf,
      getResourceServerInfo: () => ({ scope: 'mcp:read', accessTokenFormat: 'opaque' }),
      useGrantedResource: () => true,
    },
  },
  scopes: ['openid', 'mcp:read'],
});
provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error', err));
provider.on('grant.error', (_ctx, err) => console.error('oidc-provider grant.error', err.message, err.error_detail ?? ''));

const challenge = `Bearer resource_metadata="${issuer}/.well-known/oauth-protected-resource/mcp"`;
const app = express();
app.get('/.well-known/oauth-protected-resource/mcp', (_req, res) => {
  res.json({ resource: mcpUrl, authorization_servers: [issuer] });
});
app.post('/mcp', express.json(), async (req, res) => {
  // The token as either scheme: the broker binds it with DPoP when the provider offers that
  // (proofs are checked by the DPoP tests, not here).
  const bearer = (req.headers.authorization ?? '').replace(/^(Bearer|DPoP) /i, '');
  const token = bearer && (await provider.ClientCredentials.find(bearer));
  if (!token || token.aud !== mcpUrl) {
    res.status(401).set('www-authenticate', challenge).json({ error: 'invalid_token' });
    return;
  }
  const mcp = new McpServer({ name: 'm2m-op-upstream', version: '1.0.0' });
  mcp.registerTool('echo', { description: 'Returns its text and the client', inputSchema: { text: z.string() } }, async ({ text }) => ({
    content: [{ type: 'text', text: `${text} (client ${token.clientId})` }],
  }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => {
    transport.close();
    mcp.close();
  });
  await mcp.connect(transport);
  await transport.handleRequest(req, res, req.body);
});
app.use(provider.callback());
server.on('request', app);
console.log(JSON.stringify({ url: issuer }));
