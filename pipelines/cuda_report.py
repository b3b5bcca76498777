"""What a GPU container runs on, in one log line: the GPU, its driver, the CUDA runtime torch was
built for. A driver too old for the runtime makes torch see no GPU at all, and every container
of the pool would fail the same way: the line says which side is behind.

The Modal GPU image installs torch's CUDA 13.0 build, which needs driver R580 or newer (CUDA 13.0
release notes, "CUDA Toolkit and Corresponding Driver Versions": >= 580.65.06 on Linux).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def driver_version() -> str | None:
    """The NVIDIA kernel driver's version ("580.95.05"), or None where there is none. From
    nvidia-smi, which Modal puts in GPU containers, else from the kernel module's own file."""
    if shutil.which("nvidia-smi"):
        try:
            found = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
            )
            if found.returncode == 0 and found.stdout.strip():
                return found.stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError):
            pass
    version_file = Path("/proc/driver/nvidia/version")
    if version_file.exists():
        for word in version_file.read_text(errors="replace").split():
            if word[:1].isdigit() and word.count(".") >= 1:
                return word
    return None


def cuda_report() -> str:
    """One line: GPU, driver, CUDA runtime and torch; or why torch sees no GPU."""
    import torch

    runtime = torch.version.cuda or "none (a CPU build of torch)"
    driver = driver_version() or "none found"
    if not torch.cuda.is_available():
        return f"no CUDA GPU visible to torch: driver {driver}, CUDA runtime {runtime}, torch {torch.__version__}"
    major, minor = torch.cuda.get_device_capability(0)
    return (
        f"GPU {torch.cuda.get_device_name(0)} (sm_{major}{minor}), driver {driver}, "
        f"CUDA runtime {runtime}, torch {torch.__version__}"
    )
