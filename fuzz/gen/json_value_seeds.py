#!/usr/bin/env python3
"""Writes seeds for the JSON-fed targets that read URLs (client_registration, discovery_metadata,
client_import): their documents carrying numbers and strings spelt every way serde_json's exact
float parsing and string unescaping branch on, and hosts that take the url crate's IDNA paths
(all from json_spellings.py). Random mutation reaches those dependency branches only slowly;
from these seeds a run starts past them.
Usage: fuzz/gen/json_value_seeds.py TARGET OUT_DIR"""
import json
import os
import sys

from json_spellings import HOSTS, NUMBERS, STRINGS

target, out = sys.argv[1], sys.argv[2]


def extra():
    return '"extra":{"n":[' + ",".join(NUMBERS) + '],"s":[' + ",".join(STRINGS) + "]}"


def documents():
    urls = [f"https://{h}/mcp" for h in HOSTS]
    if target == "client_registration":
        yield "numbers", "{" + f'"redirect_uris":["http://127.0.0.1:33418/callback"],"client_name":{STRINGS[3]},' + extra() + "}"
        yield "hosts", json.dumps({"redirect_uris": [u + "/cb" for u in urls], "client_name": "idna"}, ensure_ascii=False)
        for i, u in enumerate(urls):
            yield f"pair-{i}", f"{u}/cb\n{u.upper()}/cb"
    elif target == "discovery_metadata":
        yield "prm-numbers", "{" + '"resource":"https://mcp.example.com/tenant/mcp","authorization_servers":["https://auth.example.com"],' + extra() + "}"
        yield "prm-hosts", json.dumps({"resource": urls[0], "authorization_servers": urls}, ensure_ascii=False)
        yield "as-numbers", "{" + '"issuer":"https://auth.example.com","token_endpoint":"https://auth.example.com/token",' + extra() + "}"
        for i, u in enumerate(urls):
            yield f"url-{i}", u
    elif target == "client_import":
        servers = {f"s{i}": {"url": u} for i, u in enumerate(urls)}
        for pick, key in enumerate(["mcpServers", "mcpServers", "servers"]):
            yield f"hosts-{pick}", chr(pick) + json.dumps({key: servers}, ensure_ascii=False)
            yield f"numbers-{pick}", chr(pick) + "{" + f'"{key}":{{"a":{{"url":"https://a.example/mcp",' + extra() + "}}}"
    else:
        sys.exit(f"no seeds for {target}: pick client_registration, discovery_metadata or client_import")


os.makedirs(out, exist_ok=True)
for name, text in documents():
    with open(os.path.join(out, f"values-{name}"), "wb") as f:
        f.write(text.encode())
