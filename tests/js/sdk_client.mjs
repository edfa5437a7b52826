// The official TypeScript MCP SDK client against the broker: discovery (401 → PRM → AS
// metadata), dynamic registration, authorization code + PKCE with the broker's consent page
// approved by this script, then tools/list and tools/call.
//
// Usage: node sdk_client.mjs <mcp-url>
// Prints one JSON line: { tools, echo, clientId, authorized, iss }.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const mcpUrl = new URL(process.argv[2]);
// Never listened on: the script reads the code from the broker's redirect itself.
const redirectUrl = 'http://127.0.0.1:53682/callback';

/** Walks the broker's consent page and redirects the way a browser would; returns the code. */
async function approveInBrowser(authorizationUrl) {
  const sentState = authorizationUrl.searchParams.get('state');
  let response = await fetch(authorizationUrl, { redirect: 'manual' });
  let at = authorizationUrl;
  if (response.status === 200) {
    const html = await response.text();
    const field = (name) => {
      const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
      if (!m) throw new Error(`consent page without ${name}: ${html}`);
      return m[1];
    };
    const body = new URLSearchParams({ request: field('request'), csrf: field('csrf'), decision: 'approve' });
    response = await fetch(new URL('/consent', authorizationUrl), { method: 'POST', body, redirect: 'manual' });
  }
  for (let hop = 0; hop < 60; hop++) {
    if (response.status === 200) {
      // The page that waits for the upstream sign-in: reload it, as its meta refresh does.
      response = await fetch(at, { redirect: 'manual' });
      continue;
    }
    if (![302, 303].includes(response.status)) {
      throw new Error(`authorization stopped at HTTP ${response.status}: ${await response.text()}`);
    }
    const next = new URL(response.headers.get('location'), at);
    if (next.href.startsWith(redirectUrl)) {
      const error = next.searchParams.get('error');
      if (error) throw new Error(`authorization failed: ${error}: ${next.searchParams.get('error_description')}`);
      if (next.searchParams.get('state') !== sentState) throw new Error('state was not echoed');
      lastIss = next.searchParams.get('iss');
      return next.searchParams.get('code');
    }
    at = next;
    response = await fetch(next, { redirect: 'manual' });
  }
  throw new Error('too many redirects');
}

let lastIss = null;

class Provider {
  constructor() {
    this.client = undefined;
    this.savedTokens = undefined;
    this.verifier = undefined;
    this.code = undefined;
  }
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: 'TypeScript SDK test client',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() { return this.client; }
  saveClientInformation(info) { this.client = info; }
  tokens() { return this.savedTokens; }
  saveTokens(tokens) { this.savedTokens = tokens; }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  async redirectToAuthorization(url) { this.code = await approveInBrowser(url); }
}

const provider = new Provider();
const newClient = () => new Client({ name: 'sdk-test', version: '1.0.0' });
let client = newClient();
let transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
try {
  await client.connect(transport);
} catch (e) {
  if (!(e instanceof UnauthorizedError)) throw e;
  await transport.finishAuth(provider.code);
  client = newClient();
  transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  await client.connect(transport);
}
const tools = await client.listTools();
const echo = await client.callTool({ name: 'echo', arguments: { text: 'hello through the broker' } });
console.log(JSON.stringify({
  tools: tools.tools.map((t) => t.name),
  echo,
  clientId: provider.client?.client_id ?? null,
  authorized: provider.code !== undefined,
  iss: lastIss,
}));
await client.close();
