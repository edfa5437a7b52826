// The official TypeScript SDK client on `/mcp`, declaring sampling, form-mode elicitation and
// roots. Signs in to the broker and calls TOOL (an upstream tool that sends requests to its
// client and returns the answers), with one sampling, one elicitation and one roots request.
// The SDK's own handlers answer them. Then tells the broker its roots changed.
// Usage: node relay_client.mjs <broker-origin>/mcp TOOL
// Prints one JSON line: { result, asked: [{ method, message? }] } (what the handlers saw).
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { connect, Provider } from './broker_oauth.mjs';

const [mcpUrl, tool] = [new URL(process.argv[2]), process.argv[3]];
const asked = [];
const client = await connect(
  mcpUrl,
  new Provider(),
  (c) => {
    c.setRequestHandler(CreateMessageRequestSchema, (r) => {
      asked.push({ method: r.method });
      return { role: 'assistant', model: 'test-model', content: { type: 'text', text: `sampled: ${r.params.messages[0].content.text}` } };
    });
    c.setRequestHandler(ElicitRequestSchema, (r) => {
      asked.push({ method: r.method, message: r.params.message });
      return { action: 'accept', content: { name: 'Ada' } };
    });
    c.setRequestHandler(ListRootsRequestSchema, (r) => {
      asked.push({ method: r.method });
      return { roots: [{ uri: 'file:///home/ada/project', name: 'project' }] };
    });
  },
  { capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } } },
);
const requests = [
  { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: 'hello' } }], maxTokens: 20 } },
  { method: 'elicitation/create', params: { mode: 'form', message: 'What is your name?', requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } } },
  { method: 'roots/list', params: {} },
];
const result = await client.callTool({ name: tool, arguments: { requests } });
await client.sendRootsListChanged();
console.log(JSON.stringify({ result, asked }));
await client.close();
