// oidc-provider (a certified OpenID provider) with its device flow (RFC 8628) on, for the Cargo
// tests of device sign-in (tests/support/oidc.rs).
//
//   node device_op.mjs [--code-ttl SECONDS]
//
// Listens on 127.0.0.1:0 and prints one JSON line: {"url": "http://127.0.0.1:PORT"} (the
// issuer). Dynamic registration, revocation and the development interactions (any login and
// password; a consent page) and resource indicators (RFC 8707) are on; refresh tokens come with `offline_access`. Device codes last
// --code-ttl seconds (default 600) and are polled every second: `interval` is set to 1 in each
// device authorization answer (oidc-provider sends none, which means 5 s).

import http from 'node:http';
import Provider from 'oidc-provider';

const ttlAt = process.argv.indexOf('--code-ttl');
const codeTtl = ttlAt > 0 ? Number(process.argv[ttlAt + 1]) : 600;

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    registration: { enabled: true },
    revocation: { enabled: true },
    // RFC 8707, as MCP clients send it: any resource, its tokens carrying `mcp:read`.
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, _client, oneOf) => oneOf,
      getResourceServerInfo: () => ({ scope: 'mcp:read', accessTokenFormat: 'opaque' }),
      useGrantedResource: () => true,
    },
  },
  scopes: ['openid', 'offline_access', 'mcp:read'],
  ttl: { DeviceCode: codeTtl },
});
provider.on('device_authorization.success', (_ctx, body) => {
  body.interval = 1;
});
provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error', err));

server.on('request', provider.callback());
console.log(JSON.stringify({ url: issuer }));
