"""The README's Python examples do what they say, run as written against a real server (only the
address and key swapped for the test server's)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.conftest import API_KEY, ROOT, Server

BLOCKS = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)
# Needs real weights and LoRA files: the LoRA tests run the same request on a tiny model.
NEEDS_REAL_WEIGHTS = [block for block in BLOCKS if "sdxl-turbo" in block]


def test_every_python_example_is_run_here_but_the_one_on_real_weights() -> None:
    assert len(BLOCKS) == 3 and len(NEEDS_REAL_WEIGHTS) == 1


# The examples pass `open(...)` straight to the SDK, as OpenAI's own do, and never close the files.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_quick_examples_and_the_streaming_one_do_what_they_say(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Image.new("RGB", (1024, 1024), (90, 140, 200))
    original.save(tmp_path / "original.png")
    mask = Image.new("RGBA", (1024, 1024), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 1024, 400))  # the sky: transparent, to be repainted
    mask.save(tmp_path / "mask.png")
    monkeypatch.chdir(tmp_path)
    code = "\n".join(block for block in BLOCKS if block not in NEEDS_REAL_WEIGHTS)
    code = code.replace(
        'OpenAI(api_key="sk-local", base_url="http://127.0.0.1:8000/v1")', "OpenAI(api_key=KEY, base_url=URL)"
    )
    assert "api_key=KEY" in code
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {"KEY": API_KEY, "URL": f"{server.url}/v1"})
    lines = printed.getvalue().splitlines()
    url = lines[0]
    assert url.startswith(server.url) and httpx.get(url, timeout=30).status_code == 200
    # "two image_generation.partial_image, then .completed"
    assert [line.split()[0] for line in lines[1:]] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ], lines
