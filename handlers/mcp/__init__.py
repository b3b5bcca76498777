"""The MCP endpoint (`/mcp`): image tools for agents over the Streamable HTTP transport, on the
same request path as the HTTP API (schemas → resolve → Engine → store)."""
