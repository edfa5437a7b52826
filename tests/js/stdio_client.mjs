// The official TypeScript MCP SDK as a stdio client: it launches the broker's stdio bridge
// (`mcp-auth-broker connect NAME …`) the way Claude Code launches a local server, then
// initializes, lists tools and calls `echo`.
//
// Usage: node stdio_client.mjs <binary> <arg>...
// Prints one JSON line: { serverInfo, tools, echo }.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const [command, ...args] = process.argv.slice(2);
// The whole environment: the bridge needs the session bus to reach the OS keychain.
const transport = new StdioClientTransport({ command, args, env: { ...process.env }, stderr: 'inherit' });
const client = new Client({ name: 'stdio-test', version: '1.0.0' });
await client.connect(transport);
const tools = await client.listTools();
const echo = await client.callTool({ name: 'echo', arguments: { text: 'hello over stdio' } });
console.log(JSON.stringify({
  serverInfo: client.getServerVersion() ?? null,
  tools: tools.tools.map((t) => t.name),
  echo,
}));
await client.close();
