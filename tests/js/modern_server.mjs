// A real MCP upstream built on the official TypeScript SDK v2 server (@modelcontextprotocol/server
// 2.4.0), for the Cargo tests (tests/support/jsserver.rs).
//
//   node modern_server.mjs [--modern-only]
//
// Listens on 127.0.0.1:0 and prints one JSON line: {"url": "http://127.0.0.1:PORT/mcp"}.
//
// Without flags it is dual-era: 2026-07-28 requests (those with the per-request `_meta` envelope)
// go to the SDK's `createMcpHandler` (stateless, server/discover, MRTR, subscriptions/listen);
// 2025-era requests (initialize, then a session) go to a sessionful
// `WebStandardStreamableHTTPServerTransport` built from the same factory, so a legacy client gets
// a real session with a GET stream and server→client requests. With --modern-only every legacy
// request reaches `createMcpHandler(…, { legacy: 'reject' })`, which refuses it with the SDK's
// unsupported-protocol-version error naming 2026-07-28.
//
// Tools: `echo` {text} → text; `ask_user` {question?} → one elicitation (form, field `answer`):
// an `input_required` result for modern clients (the retry's answer completes it), an
// `elicitation/create` request for legacy ones; the result text is "{action}: {answer}" (or
// "{action}" without an answer). `add_tool` {name} registers a tool `name` (returns "{name}
// called") on every instance and announces it: `notifications/tools/list_changed` on every
// `subscriptions/listen` stream that opted in and on every legacy session's GET stream.

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import {
    McpServer,
    WebStandardStreamableHTTPServerTransport,
    acceptedContent,
    createMcpHandler,
    fromJsonSchema,
    inputRequired,
    isLegacyRequest
} from '@modelcontextprotocol/server';

const modernOnly = process.argv.includes('--modern-only');
const ANSWER_SCHEMA = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] };

/** Names registered by `add_tool`, served by every instance built after (and before) the call. */
const added = [];
/** Legacy sessions by id: their server instance (to register added tools on) and transport. */
const sessions = new Map();

function answerText(result) {
    const answer = result?.content?.answer;
    return typeof answer === 'string' ? `${result.action}: ${answer}` : `${result?.action ?? 'none'}`;
}

function registerAdded(server, name) {
    server.registerTool(name, { description: `Added by add_tool`, inputSchema: fromJsonSchema({ type: 'object' }) }, async () => ({
        content: [{ type: 'text', text: `${name} called` }]
    }));
}

/** One server instance: the SDK calls it per modern request; we call it per legacy session. */
function build({ era }) {
    const server = new McpServer({ name: 'sdk-modern-server', version: '2.4.0' }, { capabilities: { tools: { listChanged: true } } });
    server.registerTool(
        'echo',
        {
            description: 'Returns its text',
            inputSchema: fromJsonSchema({ type: 'object', properties: { text: { type: 'string' } }, required: ['text'] })
        },
        async ({ text }) => ({ content: [{ type: 'text', text }] })
    );
    server.registerTool(
        'ask_user',
        {
            description: 'Asks the person a question and returns the answer',
            inputSchema: fromJsonSchema({ type: 'object', properties: { question: { type: 'string' } } })
        },
        async ({ question }, ctx) => {
            const message = question ?? 'Please confirm';
            if (era === 'legacy') {
                // Related to this call, so it rides the call's own SSE stream (not the GET stream).
                const result = await ctx.mcpReq.elicitInput(
                    { mode: 'form', message, requestedSchema: ANSWER_SCHEMA },
                    { relatedRequestId: ctx.mcpReq.id }
                );
                return { content: [{ type: 'text', text: answerText(result) }] };
            }
            const response = ctx.mcpReq.inputResponses?.confirm;
            if (!response) {
                return inputRequired({
                    inputRequests: { confirm: inputRequired.elicit({ message, requestedSchema: ANSWER_SCHEMA }) }
                });
            }
            const content = acceptedContent(ctx.mcpReq.inputResponses, 'confirm');
            return { content: [{ type: 'text', text: answerText({ action: response.action, content }) }] };
        }
    );
    server.registerTool(
        'add_tool',
        {
            description: 'Registers another tool and announces the change',
            inputSchema: fromJsonSchema({ type: 'object', properties: { name: { type: 'string' } }, required: ['name'] })
        },
        async ({ name }) => {
            if (!added.includes(name)) {
                added.push(name);
                for (const session of sessions.values()) {
                    registerAdded(session.server, name); // announces on the session's GET stream
                }
                modern.notify.toolsChanged();
            }
            return { content: [{ type: 'text', text: `added ${name}` }] };
        }
    );
    for (const name of added) {
        registerAdded(server, name);
    }
    return server;
}

const modern = createMcpHandler(build, { legacy: 'reject' });

/** 2025-era traffic: a real session per `initialize`. */
async function legacy(request) {
    const id = request.headers.get('mcp-session-id');
    if (id) {
        const session = sessions.get(id);
        if (!session) {
            return Response.json({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }, { status: 404 });
        }
        return session.transport.handleRequest(request);
    }
    const server = build({ era: 'legacy' });
    const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: sid => sessions.set(sid, { server, transport }),
        onsessionclosed: sid => sessions.delete(sid)
    });
    await server.connect(transport);
    return transport.handleRequest(request);
}

async function route(request) {
    if (new URL(request.url).pathname !== '/mcp') {
        return new Response('not found', { status: 404 });
    }
    if (!modernOnly && (await isLegacyRequest(request))) {
        return legacy(request);
    }
    return modern.fetch(request);
}

/** node:http ⇄ web Request/Response (the SDK's own adapter package is not installed). */
async function serve(req, res) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
        for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
    }
    const aborted = new AbortController();
    res.on('close', () => aborted.abort());
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const request = new Request(`http://${req.headers.host}${req.url}`, {
        method: req.method,
        headers,
        body: hasBody ? Buffer.concat(chunks) : undefined,
        signal: aborted.signal
    });
    let response;
    try {
        response = await route(request);
    } catch (error) {
        process.stderr.write(`modern_server: ${error?.stack ?? error}\n`);
        response = new Response('internal error', { status: 500 });
    }
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.flushHeaders(); // a GET stream's headers must not wait for its first event
    if (!response.body) {
        res.end();
        return;
    }
    const reader = response.body.getReader();
    res.on('close', () => reader.cancel().catch(() => {}));
    try {
        for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            res.write(value);
        }
    } catch {
        // The client went away mid-stream.
    }
    res.end();
}

const listener = http.createServer((req, res) => {
    serve(req, res).catch(error => {
        process.stderr.write(`modern_server: ${error?.stack ?? error}\n`);
        res.destroy();
    });
});
listener.listen(0, '127.0.0.1', () => {
    const { port } = listener.address();
    process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}/mcp` })}\n`);
});
