// The official TypeScript MCP SDK v2 (`@modelcontextprotocol/client`, dual-era, modern first) as
// a stdio client: it launches the broker's stdio bridge (`mcp-auth-broker connect NAME …`) the
// way a client launches a local server, negotiates the era (`server/discover` probe, `initialize`
// fallback), lists tools and calls `echo`; with `--elicit` it also calls `ask_user`, answering the
// elicitation (an `input_required` round trip on the modern era, a server request on 2025).
//
// Usage: node stdio_client_v2.mjs [--elicit] <binary> <arg>...
// Prints one JSON line: { era, version, tools, echo, lookup, asked, elicited }.
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

let argv = process.argv.slice(2);
const elicit = argv[0] === '--elicit';
if (elicit) argv = argv.slice(1);
const [command, ...args] = argv;
// The whole environment: the bridge needs the session bus to reach the OS keychain.
const transport = new StdioClientTransport({ command, args, env: { ...process.env }, stderr: 'inherit' });
const client = new Client(
  { name: 'stdio-test-v2', version: '2.0.0' },
  { capabilities: { elicitation: { form: {} } }, versionNegotiation: { mode: 'auto' } },
);
let elicited = 0;
client.setRequestHandler('elicitation/create', async () => {
  elicited += 1;
  return { action: 'accept', content: { confirmed: true, answer: 'yes' } };
});
await client.connect(transport);
const tools = await client.listTools();
const echo = await client.callTool({ name: 'echo', arguments: { text: 'hello over stdio' } });
// `lookup` mirrors its `region` argument into `Mcp-Param-Region` on the modern era: over stdio
// the bridge has to add that header itself.
const lookup = tools.tools.some((t) => t.name === 'lookup')
  ? await client.callTool({ name: 'lookup', arguments: { region: 'eu-west 1', key: 'k1' } })
  : null;
const asked = elicit ? await client.callTool({ name: 'ask_user', arguments: {} }) : null;
console.log(JSON.stringify({
  era: client.getProtocolEra() ?? null,
  version: client.getNegotiatedProtocolVersion() ?? null,
  tools: tools.tools.map((t) => t.name),
  echo,
  lookup,
  asked,
  elicited,
}));
await client.close();
