// The official TypeScript SDK v2 client (@modelcontextprotocol/client 2.4.0) on the broker's
// aggregate endpoint `/mcp`, authenticated with a local API key. With MODE `auto` it tries
// 2026-07-28 first, as the SDK's hosts do: it discovers `/mcp` with server/discover, keeps no
// session, answers `input_required` results through its elicitation handler, and hears list
// changes on the subscriptions/listen stream it opens itself. With MODE `legacy` it is a
// 2025-11-25 client: initialize, a session, elicitation requests on its streams. Works in phases, each printing one JSON line; between phases it reads a line on
// stdin from the Rust test:
//   ready   – era and version negotiated, the tools, and for each SERVER in argv[4..] the calls
//             SERVER__echo and SERVER__ask_user (the elicitation questions it was asked)
//   changed – for each stdin line naming a tool: the tools, once they include it
// Usage: node aggregate_modern_client.mjs <broker-origin>/mcp <api-key> MODE SERVER...
import readline from 'node:readline';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

const [mcpUrl, apiKey, mode, ...servers] = [new URL(process.argv[2]), ...process.argv.slice(3)];
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const report = (phase, extra) => console.log(JSON.stringify({ phase, ...extra }));

// Each tools/list_changed resolves the current promise and arms the next one.
let changed;
let listChanged;
const arm = () => { listChanged = new Promise((resolve) => { changed = resolve; }); };
arm();

const asked = [];
const client = new Client(
  { name: 'aggregate-modern-client', version: '1.0.0' },
  {
    capabilities: { elicitation: { form: {} } },
    versionNegotiation: { mode },
    listChanged: { tools: { onChanged: () => { const done = changed; arm(); done(); } } },
  },
);
client.setRequestHandler('elicitation/create', async (request) => {
  asked.push(request.params.message);
  return { action: 'accept', content: { answer: 'yes' } };
});
const transport = new StreamableHTTPClientTransport(mcpUrl, {
  requestInit: { headers: { 'x-api-key': apiKey } },
});
await client.connect(transport);

const names = async () => (await client.listTools()).tools.map((t) => t.name);
const text = (result) => result.content?.[0]?.text;
const calls = {};
for (const server of servers) {
  calls[`${server}__echo`] = text(await client.callTool({ name: `${server}__echo`, arguments: { text: `hi ${server}` } }));
  calls[`${server}__ask_user`] = text(await client.callTool({ name: `${server}__ask_user`, arguments: { question: `Go on, ${server}?` } }));
}
report('ready', {
  era: client.getProtocolEra(),
  version: client.getNegotiatedProtocolVersion(),
  sessionId: transport.sessionId ?? null,
  tools: await names(),
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
