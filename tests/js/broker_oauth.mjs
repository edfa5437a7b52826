// Signing the official TypeScript SDK client in to the broker: the OAuth provider the SDK asks
// for, with the broker's consent page approved the way a person's browser would.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

// Never listened on: the provider reads the code from the broker's redirect itself.
export const redirectUrl = 'http://127.0.0.1:53682/callback';

/** Walks the consent page and redirects like a browser; returns { code, iss }. */
export async function approveInBrowser(authorizationUrl) {
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
      return { code: next.searchParams.get('code'), iss: next.searchParams.get('iss') };
    }
    at = next;
    response = await fetch(next, { redirect: 'manual' });
  }
  throw new Error('too many redirects');
}

/** The SDK's OAuthClientProvider, kept in memory. */
export class Provider {
  constructor() {
    this.client = undefined;
    this.savedTokens = undefined;
    this.verifier = undefined;
    this.code = undefined;
    this.iss = undefined;
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
  async redirectToAuthorization(url) {
    const { code, iss } = await approveInBrowser(url);
    this.code = code;
    this.iss = iss;
  }
}

/**
 * Connects an SDK client to `mcpUrl`, running the OAuth flow when the server asks for it.
 * `prepare(client)` runs before every connect (to register notification handlers); `options`
 * are the SDK Client's (e.g. its `capabilities`).
 */
export async function connect(mcpUrl, provider, prepare = () => {}, options = {}) {
  const make = () => {
    const client = new Client({ name: 'sdk-test', version: '1.0.0' }, options);
    prepare(client);
    return [client, new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider })];
  };
  let [client, transport] = make();
  try {
    await client.connect(transport);
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    await transport.finishAuth(provider.code);
    [client, transport] = make();
    await client.connect(transport);
  }
  return client;
}
