"""JavaScript clients against the real server: the official OpenAI SDK (npm `openai`,
tests/js/sdk.test.mjs), the Vercel AI SDK's OpenAI provider (tests/js/ai_sdk.test.mjs) and the
official MCP SDK's client on /mcp (npm `@modelcontextprotocol/sdk`, tests/js/mcp.test.mjs)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import API_KEY, ROOT, Server, png, png_bytes
from tests.test_edit import HOLE, changed_box, inside, mask_with_hole, noise

JS = ROOT / "tests" / "js"


def _node_test(script: str, server: Server, tmp_path: Path) -> str:
    node = shutil.which("node")
    assert node, "Node.js is needed for the JavaScript SDK tests (`make test` checks for it)"
    assert (JS / "node_modules" / "openai").is_dir(), "run `npm ci --prefix tests/js` (`make test` does)"
    env = {
        **os.environ,
        "IMAGEGEN_URL": server.url,
        "IMAGEGEN_KEY": API_KEY,
        "IMAGEGEN_OUT": str(tmp_path),
        "IMAGEGEN_IMAGE": str(tmp_path / "photo.png"),
        "IMAGEGEN_MASK": str(tmp_path / "mask.png"),
    }
    result = subprocess.run([node, "--test", script], cwd=JS, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_javascript_sdk_works_against_the_server(server: Server, tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(png_bytes(noise((96, 64))))
    (tmp_path / "mask.png").write_bytes(png_bytes(mask_with_hole((96, 64))))
    out = _node_test("sdk.test.mjs", server, tmp_path)
    assert "# pass 6" in out and "# fail 0" in out


def test_the_vercel_ai_sdk_works_against_the_server(server: Server, tmp_path: Path) -> None:
    photo = noise((96, 64))
    (tmp_path / "photo.png").write_bytes(png_bytes(photo))
    (tmp_path / "mask.png").write_bytes(png_bytes(mask_with_hole((96, 64))))
    out = _node_test("ai_sdk.test.mjs", server, tmp_path)
    assert "# pass 4" in out and "# fail 0" in out
    edited = png((tmp_path / "ai-sdk-edit.png").read_bytes())
    box = changed_box(photo, edited)
    assert box is not None and inside(box, HOLE)  # the first image's pixels outside the mask, byte for byte


def test_the_mcp_typescript_sdk_client_works_against_the_server(server: Server, tmp_path: Path) -> None:
    """An agent's configuration end to end: the URL, the key as a header; tools, an image, progress, 401."""
    out = _node_test("mcp.test.mjs", server, tmp_path)
    assert "# pass 3" in out and "# fail 0" in out
