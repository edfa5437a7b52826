// The official TypeScript SDK client on `/mcp`, declaring URL-mode elicitation (2025-11-25).
// Signs in to the broker, calls a tool of a server the broker is not signed in to, and expects
// the SDK's UrlElicitationRequiredError; opens the link the way a browser would (following the
// redirects through the upstream's authorization server back to the broker), waits for
// notifications/elicitation/complete, and calls the tool again.
// Usage: node elicit_client.mjs <broker-origin>/mcp TOOL
// Prints one JSON line: { code, elicitation, page, completed, second }.
import {
  ElicitationCompleteNotificationSchema,
  UrlElicitationRequiredError,
} from '@modelcontextprotocol/sdk/types.js';
import { connect, Provider } from './broker_oauth.mjs';

const [mcpUrl, tool] = [new URL(process.argv[2]), process.argv[3]];
const completed = [];
let heard;
const completion = new Promise((resolve) => { heard = resolve; });
const client = await connect(
  mcpUrl,
  new Provider(),
  (c) => c.setNotificationHandler(ElicitationCompleteNotificationSchema, (n) => {
    completed.push(n.params.elicitationId);
    heard();
  }),
  { capabilities: { elicitation: { url: {} } } },
);
const call = () => client.callTool({ name: tool, arguments: { text: 'after sign-in' } });

let refusal;
try {
  await call();
  throw new Error('the first call should need a sign-in');
} catch (e) {
  if (!(e instanceof UrlElicitationRequiredError)) throw e;
  refusal = e;
}
const elicitation = refusal.elicitations[0];
const opened = await fetch(elicitation.url); // the browser: follows every redirect
const page = { status: opened.status, signedIn: (await opened.text()).includes('You are signed in') };
let timer;
const timeout = new Promise((_, reject) => {
  timer = setTimeout(() => reject(new Error('no elicitation/complete within 20 s')), 20000);
});
await Promise.race([completion, timeout]);
clearTimeout(timer);
const second = await call();
console.log(JSON.stringify({ code: refusal.code, elicitation, page, completed, second }));
await client.close();
