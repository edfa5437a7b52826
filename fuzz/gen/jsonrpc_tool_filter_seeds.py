#!/usr/bin/env python3
"""Writes seeds for the jsonrpc_tool_filter target: its framing ([flags][u16 LE body length]
[client body][upstream answer]) around the shapes the tool filter must handle: single and batch
requests, hidden and allowed calls, JSON and event-stream answers, repeated answers, ids spelt
as floats, duplicated keys. Usage: fuzz/gen/jsonrpc_tool_filter_seeds.py OUT_DIR"""
import json
import os
import struct
import sys

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
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
