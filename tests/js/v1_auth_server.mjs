// A real MCP upstream protected by the official TypeScript SDK v1's own authorization server
// (@modelcontextprotocol/sdk 1.x: `mcpAuthRouter` with the SDK's demo in-memory provider), for the
// Cargo tests (tests/support/jsserver.rs).
//
//   node v1_auth_server.mjs
//
// Listens on 127.0.0.1:0 and prints one JSON line: {"url": "http://127.0.0.1:PORT/mcp"}.
//
// One Express app is both the authorization server (RFC 8414 metadata, DCR, an /authorize that
// approves at once, /token reading client credentials from form fields only, /revoke) and the
// resource server (RFC 9728 metadata, `requireBearerAuth` with its challenge, a stateless v1
// `McpServer` with the tool `echo`). The SDK's demo provider issues no refresh tokens; this one
// adds rotation on top of it, as a real provider would. `POST /test/expire` forgets every
// access token (refresh tokens keep working), as if they had expired.

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import express from 'express';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { mcpAuthRouter, getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidGrantError, InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { DemoInMemoryAuthProvider } from '@modelcontextprotocol/sdk/examples/server/demoInMemoryOAuthProvider.js';

/** The SDK's demo provider plus rotating refresh tokens, and an unknown token refused as
 * `invalid_token` (401) rather than the demo's plain error (which the SDK answers with 500). */
class RefreshingProvider extends DemoInMemoryAuthProvider {
    refreshTokens = new Map();

    async verifyAccessToken(token) {
        try {
            return await super.verifyAccessToken(token);
        } catch {
            throw new InvalidTokenError('unknown or expired token');
        }
    }

    issueRefresh(clientId, scopes, resource) {
        const token = randomUUID();
        this.refreshTokens.set(token, { clientId, scopes, resource });
        return token;
    }

    async exchangeAuthorizationCode(client, code, verifier) {
        const scopes = this.codes.get(code)?.params.scopes ?? [];
        const resource = this.codes.get(code)?.params.resource;
        const tokens = await super.exchangeAuthorizationCode(client, code, verifier);
        return { ...tokens, refresh_token: this.issueRefresh(client.client_id, scopes, resource) };
    }

    async exchangeRefreshToken(client, refreshToken, scopes) {
        const held = this.refreshTokens.get(refreshToken);
        if (!held || held.clientId !== client.client_id) {
            throw new InvalidGrantError('refresh token unknown, used or not issued to this client');
        }
        this.refreshTokens.delete(refreshToken);
        const granted = scopes?.length ? scopes : held.scopes;
        const token = randomUUID();
        this.tokens.set(token, {
            token,
            clientId: client.client_id,
            scopes: granted,
            expiresAt: Date.now() + 3600000,
            resource: held.resource,
            type: 'access'
        });
        return {
            access_token: token,
            token_type: 'bearer',
            expires_in: 3600,
            scope: granted.join(' '),
            refresh_token: this.issueRefresh(client.client_id, granted, held.resource)
        };
    }
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
    const base = `http://127.0.0.1:${server.address().port}`;
    const mcpUrl = new URL('/mcp', base);
    const provider = new RefreshingProvider();
    const app = express();
    app.use(
        mcpAuthRouter({
            provider,
            issuerUrl: new URL(base),
            resourceServerUrl: mcpUrl,
            scopesSupported: ['mcp:tools']
        })
    );
    app.post('/test/expire', (_req, res) => {
        const forgotten = provider.tokens.size;
        provider.tokens.clear();
        res.json({ forgotten });
    });
    const bearer = requireBearerAuth({
        verifier: provider,
        requiredScopes: ['mcp:tools'],
        resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(mcpUrl)
    });
    app.post('/mcp', bearer, express.json(), async (req, res) => {
        const mcp = new McpServer({ name: 'sdk-v1-auth-server', version: '1.0.0' });
        mcp.registerTool('echo', { description: 'Returns its text', inputSchema: { text: z.string() } }, async ({ text }) => ({
            content: [{ type: 'text', text }]
        }));
        const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
        res.on('close', () => {
            transport.close();
            mcp.close();
        });
        await mcp.connect(transport);
        await transport.handleRequest(req, res, req.body);
    });
    for (const method of ['get', 'delete']) {
        app[method]('/mcp', bearer, (_req, res) => res.status(405).set('allow', 'POST').end());
    }
    server.on('request', app);
    console.log(JSON.stringify({ url: mcpUrl.href }));
});
