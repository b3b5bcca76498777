"""The official OpenAI JavaScript SDK (npm `openai`) against the real server: tests/js/sdk.test.mjs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import API_KEY, ROOT, Server, png_bytes
from tests.test_edit import mask_with_hole, noise

JS = ROOT / "tests" / "js"


def test_the_javascript_sdk_works_against_the_server(server: Server, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed for the JavaScript SDK tests (`make test` checks for it)"
    assert (JS / "node_modules" / "openai").is_dir(), "run `npm ci --prefix tests/js` (`make test` does)"
    (tmp_path / "photo.png").write_bytes(png_bytes(noise((96, 64))))
    (tmp_path / "mask.png").write_bytes(png_bytes(mask_with_hole((96, 64))))
    env = {**os.environ, "IMAGEGEN_URL": server.url, "IMAGEGEN_KEY": API_KEY,
           "IMAGEGEN_IMAGE": str(tmp_path / "photo.png"), "IMAGEGEN_MASK": str(tmp_path / "mask.png")}
    result = subprocess.run([node, "--test", "sdk.test.mjs"], cwd=JS, env=env, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# pass 4" in result.stdout and "# fail 0" in result.stdout
