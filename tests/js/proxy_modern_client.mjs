// The official TypeScript SDK v2 client (@modelcontextprotocol/client 2.4.0) on the broker's
// per-server endpoint `/{server}/mcp`, authenticated with a local API key, in MODE `auto` (tries
// 2026-07-28 first, as the SDK's hosts do), `legacy` (2025-11-25) or `pin` (2026-07-28 only:
// `{ pin: '2026-07-28' }`, a client that shares no era with a 2025-only server). Works in phases, each
// printing one JSON line; between phases it reads a line on stdin from the Rust test:
//   ready   – era and version negotiated, session id, the tools, the calls `echo` and `ask_user`
//             (the elicitation questions it was asked), and `lookup` when the server has it
//   changed – for each stdin line naming a tool: the tools, once they include it
// Usage: node proxy_modern_client.mjs <broker-origin>/<server>/mcp <api-key> MODE
import readline from 'node:readline';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

const [url, apiKey, mode] = [new URL(process.argv[2]), process.argv[3], process.argv[4]];
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const report = (phase, extra) => console.log(JSON.stringify({ phase, ...extra }));

let changed;
let listChanged;
const arm = () => { listChanged = new Promise((resolve) => { changed = resolve; }); };
arm();

const asked = [];
const client = new Client(
  { name: 'proxy-modern-client', version: '1.0.0' },
  {
    capabilities: { elicitation: { form: {} } },
    versionNegotiation: { mode: mode === 'pin' ? { pin: '2026-07-28' } : mode },
    listChanged: { tools: { onChanged: () => { const done = changed; arm(); done(); } } },
  },
);
client.setRequestHandler('elicitation/create', async (request) => {
  asked.push(request.params.message);
  return { action: 'accept', content: { answer: 'yes' } };
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
if (tools.includes('lookup')) {
  calls.lookup = text(await client.callTool({ name: 'lookup', arguments: { region: 'Zürich', key: 'k' } }));
}
report('ready', {
  era: client.getProtocolEra(),
  version: client.getNegotiatedProtocolVersion(),
  sessionId: transport.sessionId ?? null,
  tools,
  calls,
  asked,
});

for (;;) {
  const next = await lines.next();
  if (next.done) break;
  const expected = next.value.trim();
  let waiter = listChanged; // taken before listing, so a change during the list is not missed
  let current = await names();
  while (!current.includes(expected)) {
    await waiter;
    waiter = listChanged;
    current = await names();
  }
  report('changed', { tools: current });
}
await client.close();
process.exit(0); // stdin (the test's pipe) would keep the process alive
