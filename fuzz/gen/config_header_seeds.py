#!/usr/bin/env python3
"""Writes config seeds whose "headers" hold every standard header name the http crate knows,
each with one byte replaced by '!' and each of its prefixes: inputs that walk the crate's
name-matching decision tree (thousands of branches) that random mutation reaches only slowly.
Usage: fuzz/gen/config_header_seeds.py HTTP_CRATE_SRC_HEADER_NAME_RS OUT_DIR"""
import json
import re
import sys

source, out = sys.argv[1], sys.argv[2]
names = sorted(set(re.findall(r'b"([a-z0-9-]+)"\);', open(source).read())))
variants = []
for name in names:
    variants.append(name)
    for i in range(len(name)):
        variants.append(name[:i] + "!" + name[i + 1:])
        variants.append(name[:i])
variants = [v for v in dict.fromkeys(variants) if v]


def doc(keys):
    entry = {"url": "https://x.example/mcp", "headers": {k: "v" for k in keys}}
    return json.dumps({"mcp_servers": {"a": entry}}, separators=(",", ":"))


chunks, current = [], []
for v in variants:
    if len(doc(current + [v])) > 8000:  # under scripts/fuzz.sh's -max_len=8192
        chunks.append(current)
        current = []
    current.append(v)
chunks.append(current)
for i, keys in enumerate(chunks):
    with open(f"{out}/standard-header-names-{i}", "w") as f:
        f.write(doc(keys))
print(f"{len(names)} names, {len(variants)} header keys in {len(chunks)} seeds")
