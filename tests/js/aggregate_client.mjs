// The official TypeScript SDK client on the broker's aggregate endpoint `/mcp`. Signs in
// through the broker, then works in phases, each printing one JSON line; between phases it
// waits for a line on stdin from the Rust test (which changes the upstreams meanwhile):
//   listed     – tools of every server, and one call to each tool named in argv[3..]
//   changed    – after tools/list_changed notifications: the tools, once they include the
//                tool named on stdin
//   signed_out – after the test signed the broker out of a server: tools, the log notices
//                received, and the call of argv[3] again
// Usage: node aggregate_client.mjs <broker-origin>/mcp TOOL...
import readline from 'node:readline';
import {
  LoggingMessageNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { connect, Provider } from './broker_oauth.mjs';

const mcpUrl = new URL(process.argv[2]);
const tools = process.argv.slice(3);
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const notices = [];
// Each tools/list_changed resolves the current promise and arms the next one.
let changed;
let listChanged;
const arm = () => { listChanged = new Promise((resolve) => { changed = resolve; }); };
arm();

const provider = new Provider();
const client = await connect(mcpUrl, provider, (c) => {
  c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => { notices.push(n.params); });
  c.setNotificationHandler(ToolListChangedNotificationSchema, () => { const done = changed; arm(); done(); });
});
const names = async () => (await client.listTools()).tools.map((t) => t.name);
const call = (name) => client.callTool({ name, arguments: name.endsWith('__add') ? { a: 2, b: 3 } : { text: `hello ${name}` } });
const report = (phase, extra) => console.log(JSON.stringify({ phase, ...extra }));

const calls = {};
for (const t of tools) calls[t] = await call(t);
report('listed', { tools: await names(), calls, authorized: provider.code !== undefined, iss: provider.iss });

// The test names the tool the change adds; other list changes (health) are waited past.
const expected = (await lines.next()).value.trim();
let waiter = listChanged; // taken before listing, so a change during the list is not missed
let current = await names();
while (!current.includes(expected)) {
  await waiter;
  waiter = listChanged;
  current = await names();
}
report('changed', { tools: current });

await lines.next();
notices.length = 0;
const after = await names();
report('signed_out', { tools: after, notices: [...notices], call: await call(tools[0]) });
await client.close();
process.exit(0); // stdin (the test's pipe) would keep the process alive
