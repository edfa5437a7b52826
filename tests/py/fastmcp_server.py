"""A real MCP upstream with FastMCP's own built-in authorization server, for the Cargo tests
(tests/support/pyserver.rs).

    python fastmcp_server.py

Listens on 127.0.0.1:0 and prints one JSON line: {"url": "http://127.0.0.1:PORT/mcp"}.

The server is FastMCP (pinned in scripts/setup-python.sh) with `InMemoryOAuthProvider`: RFC 8414
metadata, dynamic client registration with the scopes it accepts, an authorization endpoint that
approves at once (FastMCP's test provider has no consent page) and a token endpoint built on the
MCP Python SDK (client_secret_basic needs client_id in the body too; refresh tokens rotate).
Tool: `echo` {text} → text. `POST /test/expire` forgets every access token (refresh tokens keep
working), as if they had expired: the next call is refused and must be refreshed.
"""

import asyncio
import json
import os
import socket
import sys

# Only warnings on stderr (FastMCP logs every refused token at INFO).
os.environ.setdefault("FASTMCP_LOG_LEVEL", "WARNING")

import uvicorn
from fastmcp import FastMCP
from fastmcp.server.auth.providers.in_memory import InMemoryOAuthProvider
from mcp.server.auth.settings import ClientRegistrationOptions
from starlette.requests import Request
from starlette.responses import JSONResponse

SCOPES = ["mcp:tools", "offline_access"]


def build(base: str):
    provider = InMemoryOAuthProvider(
        base_url=base,
        client_registration_options=ClientRegistrationOptions(enabled=True, valid_scopes=SCOPES),
        required_scopes=["mcp:tools"],
    )
    mcp = FastMCP("fastmcp-upstream", auth=provider)

    @mcp.tool
    def echo(text: str) -> str:
        """Returns its text."""
        return text

    @mcp.custom_route("/test/expire", methods=["POST"])
    async def expire(_request: Request) -> JSONResponse:
        forgotten = len(provider.access_tokens)
        provider.access_tokens.clear()
        return JSONResponse({"forgotten": forgotten})

    return mcp.http_app(path="/mcp")


async def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(build(base), log_level="warning"))
    started = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    print(json.dumps({"url": f"{base}/mcp"}), flush=True)
    await started


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
