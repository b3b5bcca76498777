"""Does BiRefNet run here, through the server's own matting path? For an operator, or a GPU session,
before serving `IMAGEGEN_MATTING_MODEL=birefnet`.

    python scripts/check_birefnet.py --random --device cuda     # the pinned code, random weights (KBs)
    python scripts/check_birefnet.py --device cuda              # the pinned code and weights (444 MB)
    python scripts/check_birefnet.py --random --code DIR        # BiRefNet's code from a folder, offline

Both load through `pipelines.matting.matte.Matting` (the folder's `auto_map` class, as transformers
resolves it) and cut out a synthetic subject (a dark disc on a light ground). With `--random` the
net's remote code is built with random weights at its own config (the backbone its `birefnet.py`
fixes: Swin-L for ZhengPeng7/BiRefNet), saved, loaded back and run: a check that the code, its
imports (torchvision, timm, kornia, einops) and this transformers agree, not of matte quality.
With the real weights, the disc must come out opaque and the corners transparent.
The code files' digests are compared with the ones other projects published for the pinned
revision (see PUBLISHED below); a mismatch is reported, not fatal.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.contract.matting import MATTING_MODELS, MattingSpec
from pipelines.matting.matte import Matting, fetch_matting

# sha256 of ZhengPeng7/BiRefNet's files at the pinned revision, as a public project recorded them
# ("re-verified against the API 2026-08-21"); not checked against the hub from here.
PUBLISHED = {
    "birefnet.py": "208771ae626f653d64128fbf2d6ac9f8e645c5cc5e286258a73ec3322bbfe5ef",
    "BiRefNet_config.py": "e7b8c2a74f6cea6a59553d517f71d47f2c1d90e670a13416af17c25fe2f3dc52",
    "config.json": "c97ea21569daf66b205491a4635147dd3bc42c7c168b89d7d75b53f67ef548ae",
    "model.safetensors": "9ab37426bf4de0567af6b5d21b16151357149139362e6e8992021b8ce356a154",
}
CODE_FILES = ("birefnet.py", "BiRefNet_config.py", "config.json")


def _digests(folder: Path) -> None:
    for name, expected in PUBLISHED.items():
        path = folder / name
        if not path.exists():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"  {name:20s} {'matches' if digest == expected else 'DIFFERS from'} the published digest")


def _pinned_code(spec: MattingSpec) -> Path:
    """The code files at the pinned revision (no weights)."""
    from huggingface_hub import snapshot_download

    return Path(
        snapshot_download(spec.source.removeprefix("hub:"), revision=spec.revision, allow_patterns=list(CODE_FILES))
    )


def _random_folder(code: Path, dest: Path) -> Path:
    """`code`'s model built with random weights and saved beside a copy of its code."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForImageSegmentation

    dest.mkdir(parents=True, exist_ok=True)
    for name in CODE_FILES:
        shutil.copy(code / name, dest / name)
    began = time.monotonic()
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(code, trust_remote_code=True)
    model = AutoModelForImageSegmentation.from_config(config, trust_remote_code=True)
    # save_file, not save_pretrained: BiRefNet swaps its own Config object in, which transformers 5 cannot serialise.
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, dest / "model.safetensors")
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(
        f"built {type(model).__name__} with random weights: {params:.1f} M parameters, {time.monotonic() - began:.1f} s"
    )
    return dest


def _subject(side: int):
    """A dark disc on a light ground: the salient subject any matting model should find."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (side, side), (235, 235, 230))
    ImageDraw.Draw(image).ellipse((side // 4, side // 4, 3 * side // 4, 3 * side // 4), fill=(40, 60, 150))
    return image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", action="store_true", help="random weights: check the code path, not quality")
    parser.add_argument("--code", type=Path, help="a folder with birefnet.py, BiRefNet_config.py, config.json")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resolution", type=int, help="the square side the net sees (default: the catalog's)")
    parser.add_argument("--size", type=int, default=512, help="the test image's side")
    parser.add_argument("--n", type=int, default=2, help="images in the batch")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "imagegen-check-birefnet")
    args = parser.parse_args()

    import numpy as np
    import torch

    catalog = MATTING_MODELS["birefnet"]
    resolution = args.resolution or catalog.resolution
    print(f"torch {torch.__version__}, device {args.device}, {catalog.source} @ {catalog.revision}")
    if args.random:
        code = args.code or _pinned_code(catalog)
        print(f"code from {code}")
        _digests(code)
        folder = _random_folder(code, args.cache_dir / "random")
        spec = MattingSpec("birefnet-random", f"dir:{folder}", resolution, "random-weight BiRefNet")
    else:
        folder = Path(fetch_matting(catalog, args.cache_dir))  # what `imagegen pull birefnet` fetches
        print(f"weights from {folder}")
        _digests(folder)
        spec = MattingSpec(catalog.id, catalog.source, resolution, catalog.description, catalog.revision)
    matting = Matting(spec, args.cache_dir)
    images = [_subject(args.size) for _ in range(args.n)]
    began = time.monotonic()
    matting.cut_out(images[:1], args.device)  # the load, and a first run
    print(f"loaded and ran once in {time.monotonic() - began:.1f} s")
    began = time.monotonic()
    cut = matting.cut_out(images, args.device)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    per_image = (time.monotonic() - began) / args.n * 1000
    alpha = np.asarray(cut[0])[..., 3]
    middle = slice(args.size // 2 - 8, args.size // 2 + 8)
    centre, corner = alpha[middle, middle].mean(), alpha[:16, :16].mean()
    decisive = float(((alpha < 13) | (alpha > 242)).mean())
    print(f"{cut[0].mode} {cut[0].size}: {per_image:.0f} ms per image at {resolution}x{resolution} (batch of {args.n})")
    print(
        f"alpha: centre {centre:.0f}, corner {corner:.0f}, range {alpha.min()}-{alpha.max()}, decisive {decisive:.2f}"
    )
    if args.random:
        print("PASS: BiRefNet's code builds, loads and mattes through the server's path (random weights)")
        return 0
    ok = centre > 200 and corner < 55
    print("PASS: the disc is opaque, the ground transparent" if ok else "FAIL: the matte does not find the disc")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
