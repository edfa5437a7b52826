#!/usr/bin/env python3
"""Writes seeds for the jsonrpc_tool_filter target: its framing ([flags][u16 LE body length]
[client body][upstream answer]) around the shapes the tool filter must handle: single and batch
requests, hidden and allowed calls, JSON and event-stream answers, repeated answers, ids spelt
as floats, duplicated keys, and the numbers and strings of json_spellings.py (they come back
re-serialised, so each must keep its value). Usage: fuzz/gen/jsonrpc_tool_filter_seeds.py OUT_DIR"""
import json
import os
import struct
import sys

from json_spellings import BAD_STRINGS, NUMBERS, STRINGS, TOO_BIG

out = sys.argv[1]
ALLOW, SSE, GET = 0, 2, 4  # flags: bit 0 = deny-list server, bit 1 = event stream, bit 2 = GET


def req(id_, method, **params):
    m = {"jsonrpc": "2.0", "method": method}
    if id_ is not None:
        m["id"] = id_
    if params:
        m["params"] = params
    return m


def answer(id_, names):
    return {"jsonrpc": "2.0", "id": id_, "result": {"tools": [{"name": n} for n in names]}}


def sse(*messages, raw=None):
    events = [f"event: message\nid: {i}\ndata: {json.dumps(m)}\n\n" for i, m in enumerate(messages)]
    return "".join(events) + (raw or "")


def seed(flags, body, upstream):
    body = body if isinstance(body, str) else json.dumps(body)
    upstream = upstream if isinstance(upstream, str) else json.dumps(upstream)
    b = body.encode()
    return bytes([flags]) + struct.pack("<H", len(b)) + b + upstream.encode()


lists = req(1, "tools/list")
both = ["echo", "add", "secret", "rm", "other"]
seeds = {
    "list-json": seed(ALLOW, lists, answer(1, both)),
    "list-json-deny": seed(1, lists, answer(1, both)),
    "list-sse": seed(SSE, lists, sse(req(None, "notifications/progress"), answer(1, both))),
    "list-sse-chunked": seed(SSE | (3 << 3), lists, sse(answer(1, both))),
    "batch": seed(1, [lists, req(2, "ping"), req("x", "tools/list")],
                  [answer(1, both), {"jsonrpc": "2.0", "id": 2, "result": {}}, answer("x", both)]),
    "repeated-answer": seed(1, lists, [answer(1, []), answer(1, both)]),
    "float-id": seed(1, lists, [answer(1.0, both)]),
    "duplicate-keys": seed(1, lists, '{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"rm","name":"ok"}]},"result":{"tools":[]}}'),
    "call-hidden": seed(1, req(3, "tools/call", name="secret", arguments={}), answer(3, [])),
    "call-allowed": seed(ALLOW, req(3, "tools/call", name="echo"), "{}"),
    "call-nameless": seed(ALLOW, req(3, "tools/call", arguments={}), "{}"),
    "batch-hidden-call": seed(1, [lists, req(4, "tools/call", name="rm")], "[]"),
    "get-stream": seed(SSE | GET | 1, "", sse(answer(9, both), raw=": keep-alive\n\nretry: 100\n\n")),
    "not-json": seed(ALLOW, "[not json", "{"),
}


def numbered(flags, numbers):
    """A batch of tools/list requests with these ids, answered (in order) with tools lists, the
    first of whose schemas carries the same numbers."""
    body = "[" + ",".join(f'{{"jsonrpc":"2.0","id":{n},"method":"tools/list"}}' for n in numbers) + "]"
    schema = '{"type":"object","properties":{"n":{"type":"number","enum":[' + ",".join(numbers) + "]}}}"
    answers = []
    for i, n in enumerate(numbers):
        echo = f'{{"name":"echo","inputSchema":{schema}}}' if i == 0 else '{"name":"echo"}'
        answers.append(f'{{"jsonrpc":"2.0","id":{n},"result":{{"tools":[{echo},{{"name":"rm"}}]}}}}')
    answer = "[" + ",".join(answers) + "]" if flags & SSE == 0 else "".join(
        f"event: message\ndata: {a}\n\n" for a in answers)
    return seed(flags, body, answer)


def groups(numbers, flags, limit=8000):
    """The numbers split into runs whose seeds stay under libFuzzer's -max_len (8192)."""
    group = []
    for n in numbers:
        if group and len(numbered(flags, group + [n])) > limit:
            yield group
            group = []
        group.append(n)
    if group:
        yield group


for flags, kind in [(1, "json"), (ALLOW, "json-allow"), (SSE, "sse"), (SSE | 1, "sse-deny")]:
    for i, group in enumerate(groups(NUMBERS, flags)):
        seeds[f"numbers-{kind}-{i}"] = numbered(flags, group)
for i, n in enumerate(TOO_BIG):
    seeds[f"number-out-of-range-{i}"] = numbered(1, [n])
for i, text in enumerate(STRINGS + BAD_STRINGS):
    tools = f'[{{"name":"echo","description":{text},"title":{text}}},{{"name":"secret","description":{text}}}]'
    seeds[f"string-{i}"] = seed(i % 2, lists, f'{{"jsonrpc":"2.0","id":1,"result":{{"tools":{tools}}}}}')
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
