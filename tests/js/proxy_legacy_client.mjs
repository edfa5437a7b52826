// The official TypeScript SDK 1.x client (@modelcontextprotocol/sdk 1.32.2: 2025 only, it
// sends `initialize`) on the broker's per-server endpoint `/{server}/mcp`, authenticated with a
// local API key. Same phases as proxy_modern_client.mjs:
//   ready   – version, session id, the tools, the calls `echo` and `ask_user` (the elicitation
//             questions it was asked)
//   changed – for each stdin line naming a tool: the tools, once they include it
// Usage: node proxy_legacy_client.mjs <broker-origin>/<server>/mcp <api-key>
import readline from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  ElicitRequestSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';

const [url, apiKey] = [new URL(process.argv[2]), process.argv[3]];
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const report = (phase, extra) => console.log(JSON.stringify({ phase, ...extra }));

let changed;
let listChanged;
const arm = () => { listChanged = new Promise((resolve) => { changed = resolve; }); };
arm();

const asked = [];
const client = new Client(
  { name: 'proxy-legacy-client', version: '1.0.0' },
  { capabilities: { elicitation: { form: {} } } },
);
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  asked.push(request.params.message);
  return { action: 'accept', content: { answer: 'yes' } };
});
client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
  const done = changed;
  arm();
  done();
});
const transport = new StreamableHTTPClientTransport(url, {
  requestInit: { headers: { 'x-api-key': apiKey } },
});
await client.connect(transport);

const names = async () => (await client.listTools()).tools.map((t) => t.name);
const text = (result) => result.content?.[0]?.text;
const tools = await names();
const calls = {
  echo: text(await client.callTool({ name: 'echo', arguments: { text: 'hi' } })),
  ask_user: text(await client.callTool({ name: 'ask_user', arguments: { question: 'Go on?' } })),
};
report('ready', {
  version: transport.protocolVersion ?? null,
  sessionId: transport.sessionId ?? null,
  tools,
  calls,
  asked,
});

for (;;) {
  const next = await lines.next();
  if (next.done) break;
  const expected = next.value.trim();
  let waiter = listChanged;
  let current = await names();
  while (!current.includes(expected)) {
    await waiter;
    waiter = listChanged;
    current = await names();
  }
  report('changed', { tools: current });
}
await client.close();
process.exit(0);
