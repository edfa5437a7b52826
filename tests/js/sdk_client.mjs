// The official TypeScript MCP SDK client against the broker: discovery (401 → PRM → AS
// metadata), dynamic registration, authorization code + PKCE with the consent page approved by
// this script (broker_oauth.mjs), then tools/list and tools/call.
//
// Usage: node sdk_client.mjs <mcp-url>
// Prints one JSON line: { tools, echo, clientId, authorized, iss }.
import { connect, Provider } from './broker_oauth.mjs';

const provider = new Provider();
const client = await connect(new URL(process.argv[2]), provider);
const tools = await client.listTools();
const echo = await client.callTool({ name: 'echo', arguments: { text: 'hello through the broker' } });
console.log(JSON.stringify({
  tools: tools.tools.map((t) => t.name),
  echo,
  clientId: provider.client?.client_id ?? null,
  authorized: provider.code !== undefined,
  iss: provider.iss ?? null,
}));
await client.close();
