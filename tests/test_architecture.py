"""The web side must import without torch: on Modal it is the small CPU-only front."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_handlers_import_without_torch_diffusers_or_transformers() -> None:
    code = (
        "import sys, handlers.app, handlers.routes.images, handlers.jobs, pipelines.catalog\n"
        "heavy = sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules)\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
