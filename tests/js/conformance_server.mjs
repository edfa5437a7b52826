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
// `input_required` results on the modern wire).
//
// Requests whose Host is not a loopback name are refused with 403 (DNS rebinding protection).
// With CONFORMANCE_SERVER_TRACE=1 every request and response chunk is written to stderr.

import http from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import {
    CLIENT_CAPABILITIES_META_KEY,
    McpServer,
    ResourceTemplate,
    WebStandardStreamableHTTPServerTransport,
    acceptedContent,
    createMcpHandler,
    createRequestStateCodec,
    fromJsonSchema,
    hostHeaderValidationResponse,
    inputRequired,
    inputResponse,
    isLegacyRequest,
    localhostAllowedHostnames
} from '@modelcontextprotocol/server';

// A 1x1 red PNG and a 44-byte silent WAV: the smallest valid media the content scenarios need.
const PNG =
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV = Buffer.concat([
    Buffer.from('RIFF'),
    Buffer.from([36, 0, 0, 0]),
    Buffer.from('WAVEfmt '),
    Buffer.from([16, 0, 0, 0, 1, 0, 1, 0, 0x40, 0x1f, 0, 0, 0x80, 0x3e, 0, 0, 2, 0, 16, 0]),
    Buffer.from('data'),
    Buffer.from([0, 0, 0, 0])
]).toString('base64');

const text = t => ({ type: 'text', text: t });
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
const OBJECT = fromJsonSchema({ type: 'object', properties: {} });

/** One process serves every round of a flow, so a per-process key is enough for the HMAC. */
const stateCodec = createRequestStateCodec({ key: randomBytes(32) });

const NAME_SCHEMA = { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] };
const OK_SCHEMA = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };

/** The client capabilities the request declared (modern envelope). */
function declared(ctx) {
    return ctx.mcpReq.envelope?.[CLIENT_CAPABILITIES_META_KEY] ?? {};
}

/** An accepted elicitation response for `key`, or undefined (missing, declined, malformed). */
function accepted(ctx, key) {
    return acceptedContent(ctx.mcpReq.inputResponses, key);
}

function registerContentTools(server) {
    server.registerTool('test_simple_text', { description: 'Returns simple text', inputSchema: OBJECT }, async () => ({
        content: [text('This is a simple text response for testing.')]
    }));
    server.registerTool('test_image_content', { description: 'Returns an image', inputSchema: OBJECT }, async () => ({
        content: [{ type: 'image', data: PNG, mimeType: 'image/png' }]
    }));
    server.registerTool('test_audio_content', { description: 'Returns audio', inputSchema: OBJECT }, async () => ({
        content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }]
    }));
    server.registerTool('test_embedded_resource', { description: 'Returns an embedded resource', inputSchema: OBJECT }, async () => ({
        content: [
            {
                type: 'resource',
                resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' }
            }
        ]
    }));
    server.registerTool('test_multiple_content_types', { description: 'Returns text, image and resource', inputSchema: OBJECT }, async () => ({
        content: [
            text('Multiple content types test:'),
            { type: 'image', data: PNG, mimeType: 'image/png' },
            {
                type: 'resource',
                resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: '{"test":"data","value":123}' }
            }
        ]
    }));
    server.registerTool('test_error_handling', { description: 'Always fails', inputSchema: OBJECT }, async () => ({
        isError: true,
        content: [text('This tool intentionally returns an error for testing')]
    }));
    server.registerTool(
        'json_schema_2020_12_tool',
        {
            description: 'Tool with JSON Schema 2020-12 features',
            inputSchema: fromJsonSchema({
                $schema: 'https://json-schema.org/draft/2020-12/schema',
                type: 'object',
                $defs: {
                    address: {
                        $anchor: 'addressDef',
                        type: 'object',
                        properties: { street: { type: 'string' }, city: { type: 'string' } }
                    }
                },
                properties: {
                    name: { type: 'string' },
                    address: { $ref: '#/$defs/address' },
                    contactMethod: { type: 'string', enum: ['phone', 'email'] },
                    phone: { type: 'string' },
                    email: { type: 'string' }
                },
                allOf: [{ anyOf: [{ required: ['phone'] }, { required: ['email'] }] }],
                if: { properties: { contactMethod: { const: 'phone' } }, required: ['contactMethod'] },
                then: { required: ['phone'] },
                else: { required: ['email'] },
                additionalProperties: false
            })
        },
        async args => ({ content: [text(`received ${JSON.stringify(args)}`)] })
    );
    // A parameter mirrored into an `Mcp-Param-Region` header on the modern wire (SEP-2243).
    server.registerTool(
        'test_header_param',
        {
            description: 'Echoes a region that travels in a header too',
            inputSchema: fromJsonSchema({
                type: 'object',
                properties: { region: { type: 'string', 'x-mcp-header': 'Region' } },
                required: ['region']
            })
        },
        async ({ region }) => ({ content: [text(`region ${region}`)] })
    );
}

/** Logging and progress: notifications sent while the call runs. */
function registerNotifyingTools(server) {
    const logging = async ctx => {
        await ctx.mcpReq.log('info', 'Tool execution started');
        await sleep(50);
        await ctx.mcpReq.log('info', 'Tool processing data');
        await sleep(50);
        await ctx.mcpReq.log('info', 'Tool execution completed');
        return { content: [text('Logging tool finished')] };
    };
    server.registerTool('test_tool_with_logging', { description: 'Logs three messages', inputSchema: OBJECT }, async (_, ctx) => logging(ctx));
    server.registerTool('test_logging_tool', { description: 'Logs three messages', inputSchema: OBJECT }, async (_, ctx) => logging(ctx));
    server.registerTool('test_tool_with_progress', { description: 'Reports progress 0, 50, 100', inputSchema: OBJECT }, async (_, ctx) => {
        const progressToken = ctx.mcpReq._meta?.progressToken;
        for (const progress of [0, 50, 100]) {
            if (progressToken !== undefined) {
                await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress, total: 100 } });
            }
            if (progress < 100) await sleep(50);
        }
        return { content: [text('Progress tool finished')] };
    });
}

const SEP1034_SCHEMA = {
    type: 'object',
    properties: {
        name: { type: 'string', default: 'John Doe' },
        age: { type: 'integer', default: 30 },
        score: { type: 'number', default: 95.5 },
        status: { type: 'string', enum: ['active', 'inactive', 'pending'], default: 'active' },
        verified: { type: 'boolean', default: true }
    }
};
const SEP1330_SCHEMA = {
    type: 'object',
    properties: {
        untitledSingle: { type: 'string', enum: ['option1', 'option2', 'option3'] },
        titledSingle: {
            type: 'string',
            oneOf: [
                { const: 'value1', title: 'First Option' },
                { const: 'value2', title: 'Second Option' },
                { const: 'value3', title: 'Third Option' }
            ]
        },
        legacyEnum: { type: 'string', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
        untitledMulti: { type: 'array', items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
        titledMulti: {
            type: 'array',
            items: {
                anyOf: [
                    { const: 'value1', title: 'First Choice' },
                    { const: 'value2', title: 'Second Choice' },
                    { const: 'value3', title: 'Third Choice' }
                ]
            }
        }
    }
};

/**
 * Tools that ask the client for something. Legacy era: a real server→client request on the
 * session, sent with `ctx.mcpReq.send` so it rides the POST stream of the call it belongs to
 * (the SDK's `ctx.mcpReq.elicitInput` / `requestSampling` send it unrelated, on the standalone
 * GET stream, and drop it when the client has not opened that stream yet). Modern era: an
 * `input_required` result, completed by the retry.
 */
function registerAskingTools(server, era) {
    const elicit = (name, description, message, schema, describe) =>
        server.registerTool(name, { description, inputSchema: OBJECT }, async (args, ctx) => {
            const msg = typeof args.message === 'string' ? args.message : message;
            if (era === 'legacy') {
                const result = await ctx.mcpReq.send({
                    method: 'elicitation/create',
                    params: { mode: 'form', message: msg, requestedSchema: schema }
                });
                return { content: [text(describe(result.action, result.content))] };
            }
            const answer = inputResponse(ctx.mcpReq.inputResponses, 'input');
            if (answer.kind !== 'elicit') {
                return inputRequired({ inputRequests: { input: inputRequired.elicit({ message: msg, requestedSchema: schema }) } });
            }
            return { content: [text(describe(answer.action, answer.content))] };
        });
    const completed = (action, content) => `Elicitation completed: action=${action}, content=${JSON.stringify(content ?? {})}`;
    elicit(
        'test_elicitation',
        'Asks the user for a username and email',
        'Please provide your information',
        {
            type: 'object',
            properties: {
                username: { type: 'string', description: "User's response" },
                email: { type: 'string', description: "User's email address" }
            },
            required: ['username', 'email']
        },
        (action, content) => `User response: <action: ${action}, content: ${JSON.stringify(content ?? {})}>`
    );
    elicit('test_elicitation_sep1034_defaults', 'Elicitation with defaults (SEP-1034)', 'Please review the defaults', SEP1034_SCHEMA, completed);
    elicit('test_elicitation_sep1330_enums', 'Elicitation with every enum form (SEP-1330)', 'Please pick options', SEP1330_SCHEMA, completed);
    server.registerTool(
        'test_sampling',
        {
            description: 'Asks the client LLM to answer a prompt',
            inputSchema: fromJsonSchema({ type: 'object', properties: { prompt: { type: 'string' } }, required: ['prompt'] })
        },
        async ({ prompt }, ctx) => {
            const params = { messages: [{ role: 'user', content: text(prompt) }], maxTokens: 100 };
            let result;
            if (era === 'legacy') {
                result = await ctx.mcpReq.send({ method: 'sampling/createMessage', params });
            } else {
                const answer = inputResponse(ctx.mcpReq.inputResponses, 'sample');
                if (answer.kind !== 'sampling') {
                    return inputRequired({ inputRequests: { sample: inputRequired.createMessage(params) } });
                }
                result = answer.result;
            }
            const content = Array.isArray(result.content) ? result.content[0] : result.content;
            return { content: [text(`LLM response: ${content?.text ?? JSON.stringify(content)}`)] };
        }
    );
}

/** The SEP-2322 (multi round-trip) tools: only the modern wire sees their `input_required`. */
function registerMrtrTools(server) {
    const tool = (name, description, handler) => server.registerTool(name, { description, inputSchema: OBJECT }, async (_, ctx) => handler(ctx));
    tool('test_input_required_result_elicitation', 'Asks for a name (one elicitation)', async ctx => {
        const answer = accepted(ctx, 'user_name');
        if (typeof answer?.name !== 'string') {
            return inputRequired({
                inputRequests: { user_name: inputRequired.elicit({ message: 'What is your name?', requestedSchema: NAME_SCHEMA }) }
            });
        }
        return { content: [text(`Hello, ${answer.name}!`)] };
    });
    tool('test_input_required_result_sampling', 'Asks the client LLM a question', async ctx => {
        const answer = inputResponse(ctx.mcpReq.inputResponses, 'capital_question');
        if (answer.kind !== 'sampling') {
            return inputRequired({
                inputRequests: {
                    capital_question: inputRequired.createMessage({
                        messages: [{ role: 'user', content: text('What is the capital of France?') }],
                        maxTokens: 100
                    })
                }
            });
        }
        const content = Array.isArray(answer.result.content) ? answer.result.content[0] : answer.result.content;
        return { content: [text(`The model said: ${content?.text ?? ''}`)] };
    });
    tool('test_input_required_result_list_roots', "Asks for the client's roots", async ctx => {
        const answer = inputResponse(ctx.mcpReq.inputResponses, 'client_roots');
        if (answer.kind !== 'roots') {
            return inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } });
        }
        return { content: [text(`Roots: ${answer.roots.map(r => r.uri).join(', ')}`)] };
    });
    tool('test_input_required_result_request_state', 'Confirms, carrying signed state', async ctx => {
        const state = ctx.mcpReq.requestState();
        if (state?.step === 'confirm' && accepted(ctx, 'confirm')) {
            return { content: [text('state-ok: confirmed')] };
        }
        return inputRequired({
            inputRequests: { confirm: inputRequired.elicit({ message: 'Please confirm', requestedSchema: OK_SCHEMA }) },
            requestState: await stateCodec.mint({ step: 'confirm' })
        });
    });
    tool('test_input_required_result_tampered_state', 'Confirms; a tampered state is refused', async ctx => {
        if (ctx.mcpReq.requestState()?.step === 'tamper' && accepted(ctx, 'confirm')) {
            return { content: [text('state-ok')] };
        }
        return inputRequired({
            inputRequests: { confirm: inputRequired.elicit({ message: 'Please confirm', requestedSchema: OK_SCHEMA }) },
            requestState: await stateCodec.mint({ step: 'tamper' })
        });
    });
    tool('test_input_required_result_multiple_inputs', 'Asks for a name, a greeting and the roots at once', async ctx => {
        const name = accepted(ctx, 'user_name');
        const greeting = inputResponse(ctx.mcpReq.inputResponses, 'greeting');
        const roots = inputResponse(ctx.mcpReq.inputResponses, 'client_roots');
        if (ctx.mcpReq.requestState()?.step === 'all' && name && greeting.kind === 'sampling' && roots.kind === 'roots') {
            return { content: [text(`Hello ${name.name}; ${roots.roots.length} root(s)`)] };
        }
        return inputRequired({
            inputRequests: {
                user_name: inputRequired.elicit({ message: 'What is your name?', requestedSchema: NAME_SCHEMA }),
                greeting: inputRequired.createMessage({
                    messages: [{ role: 'user', content: text('Generate a greeting') }],
                    maxTokens: 50
                }),
                client_roots: inputRequired.listRoots()
            },
            requestState: await stateCodec.mint({ step: 'all' })
        });
    });
    tool('test_input_required_result_multi_round', 'Asks two questions in two rounds', async ctx => {
        const state = ctx.mcpReq.requestState();
        if (state?.round === 2 && typeof accepted(ctx, 'step2')?.color === 'string') {
            return { content: [text(`${state.name} likes ${accepted(ctx, 'step2').color}`)] };
        }
        const name = accepted(ctx, 'step1')?.name;
        if (state?.round === 1 && typeof name === 'string') {
            return inputRequired({
                inputRequests: {
                    step2: inputRequired.elicit({
                        message: 'Step 2: What is your favorite color?',
                        requestedSchema: { type: 'object', properties: { color: { type: 'string' } }, required: ['color'] }
                    })
                },
                requestState: await stateCodec.mint({ round: 2, name })
            });
        }
        return inputRequired({
            inputRequests: { step1: inputRequired.elicit({ message: 'Step 1: What is your name?', requestedSchema: NAME_SCHEMA }) },
            requestState: await stateCodec.mint({ round: 1 })
        });
    });
    tool('test_input_required_result_capabilities', 'Asks only for what the client declared', async ctx => {
        const caps = declared(ctx);
        const requests = {};
        if (caps.elicitation) requests.confirm = inputRequired.elicit({ message: 'Confirm?', requestedSchema: OK_SCHEMA });
        if (caps.sampling) {
            requests.sample = inputRequired.createMessage({ messages: [{ role: 'user', content: text('Say hi') }], maxTokens: 10 });
        }
        if (caps.roots) requests.roots = inputRequired.listRoots();
        const answered = Object.keys(requests).every(key => inputResponse(ctx.mcpReq.inputResponses, key).kind !== 'missing');
        if (Object.keys(requests).length === 0 || answered) {
            return { content: [text('capabilities respected')] };
        }
        return inputRequired({ inputRequests: requests });
    });
    // server-stateless diagnostics: a call that needs sampling (refused with -32021 when the
    // client did not declare it), a streaming call, and hooks that change the lists.
    tool('test_missing_capability', 'Needs the sampling capability', async ctx => {
        if (inputResponse(ctx.mcpReq.inputResponses, 'sample').kind === 'sampling') {
            return { content: [text('sampled')] };
        }
        return inputRequired({
            inputRequests: {
                sample: inputRequired.createMessage({ messages: [{ role: 'user', content: text('Say hi') }], maxTokens: 10 })
            }
        });
    });
    tool('test_streaming_elicitation', 'Reports progress, then asks for confirmation', async ctx => {
        if (accepted(ctx, 'confirm')) return { content: [text('confirmed')] };
        await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: `stream-${ctx.mcpReq.id}`, progress: 1 } });
        return inputRequired({ inputRequests: { confirm: inputRequired.elicit({ message: 'Confirm?', requestedSchema: OK_SCHEMA }) } });
    });
}

function registerResources(server, era) {
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
    if (era === 'legacy') {
        server.registerResource(
            'watched-resource',
            'test://watched-resource',
            { description: 'A resource clients may subscribe to', mimeType: 'text/plain' },
            async uri => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'Watched resource content.' }] })
        );
    }
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
        resources: era === 'legacy' ? { subscribe: true, listChanged: true } : {},
        completions: {},
        logging: {}
    };
    const server = new McpServer(
        { name: 'conformance-server', version: '2.4.0' },
        { capabilities, requestState: { verify: stateCodec.verify } }
    );
    registerContentTools(server);
    registerNotifyingTools(server);
    registerAskingTools(server, era);
    registerMrtrTools(server);
    registerResources(server, era);
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
