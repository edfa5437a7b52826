// An MCP server for the conformance suite's `server` scenarios, built on the official TypeScript
// SDK v2 server (@modelcontextprotocol/server 2.4.0), for tests/gateway_conformance*.rs.
//
//   node conformance_server.mjs
//
// Listens on 127.0.0.1:0 and prints one JSON line: {"url": "http://127.0.0.1:PORT/mcp"}.
//
// Dual-era on one endpoint. 2026-07-28 requests (the per-request `_meta` envelope) go to the
// SDK's stateless `createMcpHandler`: server/discover, caching fields, MRTR (`input_required`
// with an HMAC-protected `requestState`), subscriptions/listen. 2025-era requests get a real
// session per `initialize` (a sessionful streamable HTTP transport), so server→client requests
// (sampling, elicitation), logging and progress reach the client. Both eras share one factory:
// the tools, resources and prompts the suite's scenarios name (`test_*`, `test://*`) are defined
// once; only the legacy-only elicitation/sampling tools differ by era (push requests there,
// `input_required` results on the modern wire). The tools live in conformance_tools.mjs.
//
// Requests whose Host is not a loopback name are refused with 403 (DNS rebinding protection).
// With CONFORMANCE_SERVER_TRACE=1 every request and response chunk is written to stderr.

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import {
    McpServer,
    ResourceTemplate,
    WebStandardStreamableHTTPServerTransport,
    createMcpHandler,
    fromJsonSchema,
    hostHeaderValidationResponse,
    inputRequired,
    isLegacyRequest,
    localhostAllowedHostnames
} from '@modelcontextprotocol/server';
import { OBJECT, PNG, accepted, registerTools, stateCodec, text } from './conformance_tools.mjs';

function registerResources(server) {
    server.registerResource(
        'static-text',
        'test://static-text',
        { description: 'A static text resource', mimeType: 'text/plain' },
        async uri => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }] })
    );
    server.registerResource(
        'static-binary',
        'test://static-binary',
        { description: 'A static binary resource', mimeType: 'image/png' },
        async uri => ({ contents: [{ uri: uri.href, mimeType: 'image/png', blob: PNG }] })
    );
    server.registerResource(
        'template-data',
        new ResourceTemplate('test://template/{id}/data', { list: undefined }),
        { description: 'Data for an id', mimeType: 'application/json' },
        async (uri, { id }) => ({
            contents: [
                { uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }
            ]
        })
    );
    server.registerResource(
        'watched-resource',
        'test://watched-resource',
        { description: 'A resource clients may subscribe to', mimeType: 'text/plain' },
        async uri => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'Watched resource content.' }] })
    );
}

function registerPrompts(server) {
    server.registerPrompt('test_simple_prompt', { description: 'A prompt without arguments' }, async () => ({
        messages: [{ role: 'user', content: text('This is a simple prompt for testing.') }]
    }));
    server.registerPrompt(
        'test_prompt_with_arguments',
        {
            description: 'A prompt with two arguments',
            argsSchema: fromJsonSchema({
                type: 'object',
                properties: {
                    arg1: { type: 'string', description: 'First test argument' },
                    arg2: { type: 'string', description: 'Second test argument' }
                },
                required: ['arg1', 'arg2']
            })
        },
        async ({ arg1, arg2 }) => ({
            messages: [{ role: 'user', content: text(`Prompt with arguments: arg1='${arg1}', arg2='${arg2}'`) }]
        })
    );
    server.registerPrompt(
        'test_prompt_with_embedded_resource',
        {
            description: 'A prompt embedding a resource',
            argsSchema: fromJsonSchema({
                type: 'object',
                properties: { resourceUri: { type: 'string', description: 'URI of the resource to embed' } },
                required: ['resourceUri']
            })
        },
        async ({ resourceUri }) => ({
            messages: [
                {
                    role: 'user',
                    content: { type: 'resource', resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' } }
                },
                { role: 'user', content: text('Please process the embedded resource above.') }
            ]
        })
    );
    server.registerPrompt('test_prompt_with_image', { description: 'A prompt with an image' }, async () => ({
        messages: [
            { role: 'user', content: { type: 'image', data: PNG, mimeType: 'image/png' } },
            { role: 'user', content: text('Please analyze the image above.') }
        ]
    }));
    server.registerPrompt('test_input_required_result_prompt', { description: 'A prompt that asks for context first' }, async ctx => {
        const context = accepted(ctx, 'user_context')?.context;
        if (typeof context !== 'string') {
            return inputRequired({
                inputRequests: {
                    user_context: inputRequired.elicit({
                        message: 'What context should the prompt use?',
                        requestedSchema: { type: 'object', properties: { context: { type: 'string' } }, required: ['context'] }
                    })
                }
            });
        }
        return { messages: [{ role: 'user', content: text(`Use this context: ${context}`) }] };
    });
}

/** Completion for the prompt arguments: values that start with what was typed. */
function registerCompletion(server) {
    const words = ['paris', 'park', 'party', 'test', 'testing', 'tested'];
    server.server.setRequestHandler('completion/complete', async request => {
        const typed = String(request.params?.argument?.value ?? '');
        const values = words.filter(w => w.startsWith(typed.toLowerCase()));
        return { completion: { values, total: values.length, hasMore: false } };
    });
}

/** Modern-only hooks that change the lists (the server-stateless subscription checks). */
function registerChangeHooks(server) {
    server.registerTool('test_trigger_tool_change', { description: 'Announces a tool list change', inputSchema: OBJECT }, async () => {
        modern.notify.toolsChanged();
        return { content: [text('tools changed')] };
    });
    server.registerTool('test_trigger_prompt_change', { description: 'Announces a prompt list change', inputSchema: OBJECT }, async () => {
        modern.notify.promptsChanged();
        return { content: [text('prompts changed')] };
    });
}

/** One server instance: per modern request (the SDK calls it), per legacy session (we do). */
function build({ era }) {
    const capabilities = {
        tools: { listChanged: true },
        prompts: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        completions: {},
        logging: {}
    };
    const server = new McpServer(
        { name: 'conformance-server', version: '2.4.0' },
        { capabilities, requestState: { verify: stateCodec.verify } }
    );
    registerTools(server, era);
    registerResources(server);
    registerPrompts(server);
    registerCompletion(server);
    if (era === 'modern') registerChangeHooks(server);
    if (era === 'legacy') {
        const subscribed = new Set();
        server.server.setRequestHandler('resources/subscribe', async request => {
            subscribed.add(request.params.uri);
            return {};
        });
        server.server.setRequestHandler('resources/unsubscribe', async request => {
            subscribed.delete(request.params.uri);
            return {};
        });
    }
    return server;
}

const modern = createMcpHandler(build, {
    legacy: 'reject',
    onerror: error => process.stderr.write(`conformance_server (modern): ${error?.message ?? error}\n`)
});

/** 2025-era sessions by id. */
const sessions = new Map();

async function legacy(request) {
    const id = request.headers.get('mcp-session-id');
    if (id) {
        const transport = sessions.get(id);
        if (!transport) {
            return Response.json({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }, { status: 404 });
        }
        return transport.handleRequest(request);
    }
    const server = build({ era: 'legacy' });
    const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: sid => sessions.set(sid, transport),
        onsessionclosed: sid => sessions.delete(sid)
    });
    await server.connect(transport);
    return transport.handleRequest(request);
}

async function route(request) {
    const refused = hostHeaderValidationResponse(request, localhostAllowedHostnames());
    if (refused) return refused;
    if (new URL(request.url).pathname !== '/mcp') return new Response('not found', { status: 404 });
    return (await isLegacyRequest(request)) ? legacy(request) : modern.fetch(request);
}

const trace = process.env.CONFORMANCE_SERVER_TRACE ? line => process.stderr.write(`[${Date.now() % 100000}] ${line}\n`) : () => {};

/** node:http request → web Request (body read whole: MCP POST bodies are small). */
async function toRequest(req, signal) {
    const headers = new Headers();
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : Buffer.concat(chunks);
    trace(`→ ${req.method} session=${req.headers['mcp-session-id'] ?? '-'} ${body?.toString() ?? ''}`);
    return new Request(`http://${req.headers.host ?? '127.0.0.1'}${req.url}`, { method: req.method, headers, body, signal });
}

/** Web Response → node:http, streaming the body (SSE) until it ends or the client leaves. */
async function send(response, res) {
    const headers = {};
    response.headers.forEach((value, name) => (headers[name] = value));
    res.writeHead(response.status, headers);
    trace(`← ${response.status} ${headers['content-type'] ?? ''}`);
    if (!response.body) return res.end();
    const reader = response.body.getReader();
    res.on('close', () => reader.cancel().catch(() => {}));
    try {
        for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
            trace(`← chunk ${Buffer.from(chunk.value).toString().trim()}`);
            res.write(chunk.value);
        }
    } catch {
        // The client went away mid-stream.
    }
    res.end();
}

const listener = http.createServer(async (req, res) => {
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    try {
        await send(await route(await toRequest(req, gone.signal)), res);
    } catch (error) {
        process.stderr.write(`conformance_server: ${error?.stack ?? error}\n`);
        if (!res.headersSent) res.writeHead(500);
        res.end();
    }
});
listener.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${listener.address().port}/mcp` })}\n`);
});
