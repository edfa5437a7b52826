// The tools of tests/js/conformance_server.mjs: every tool the conformance suite's `server`
// scenarios call by name (`test_*`), on the official TypeScript SDK v2 server (2.4.0). Also the
// media and helpers its resources and prompts share.

import { randomBytes } from 'node:crypto';
import {
    CLIENT_CAPABILITIES_META_KEY,
    acceptedContent,
    createRequestStateCodec,
    fromJsonSchema,
    inputRequired,
    inputResponse
} from '@modelcontextprotocol/server';

// A 1x1 red PNG and a 44-byte silent WAV: the smallest valid media the content scenarios need.
export const PNG =
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV = Buffer.concat([
    Buffer.from('RIFF'),
    Buffer.from([36, 0, 0, 0]),
    Buffer.from('WAVEfmt '),
    Buffer.from([16, 0, 0, 0, 1, 0, 1, 0, 0x40, 0x1f, 0, 0, 0x80, 0x3e, 0, 0, 2, 0, 16, 0]),
    Buffer.from('data'),
    Buffer.from([0, 0, 0, 0])
]).toString('base64');

export const text = t => ({ type: 'text', text: t });
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
export const OBJECT = fromJsonSchema({ type: 'object', properties: {} });

/** One process serves every round of a flow, so a per-process key is enough for the HMAC. */
export const stateCodec = createRequestStateCodec({ key: randomBytes(32) });

const NAME_SCHEMA = { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] };
const OK_SCHEMA = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };

/** The client capabilities the request declared (modern envelope). */
function declared(ctx) {
    return ctx.mcpReq.envelope?.[CLIENT_CAPABILITIES_META_KEY] ?? {};
}

/** An accepted elicitation response for `key`, or undefined (missing, declined, malformed). */
export function accepted(ctx, key) {
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

/** Every tool, for one server instance of `era` ('legacy' or 'modern'). */
export function registerTools(server, era) {
    registerContentTools(server);
    registerNotifyingTools(server);
    registerAskingTools(server, era);
    registerMrtrTools(server);
}
