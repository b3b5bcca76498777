"""The user's own weights: absent ones are named with the command that fetches them, present ones
(a hub cache filled by `imagegen pull`, here faked by putting a tiny model where the pinned
snapshot goes) load with no network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pipelines.contract.catalog import CATALOG
from pipelines.weights import tiny_model_dir
from tests.conftest import png, start_server, stop_server


def _imagegen(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "handlers.hosts.cli", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def hub_with_sd_turbo(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An HF_HOME whose hub cache holds sd-turbo's pinned snapshot, in its fp16 variant (tiny weights)."""
    from diffusers import DiffusionPipeline

    spec = CATALOG["sd-turbo"]
    home = tmp_path_factory.mktemp("hf-home")
    repo = home / "hub" / ("models--" + spec.source.removeprefix("hub:").replace("/", "--"))
    snapshot = repo / "snapshots" / spec.revision
    pipe = DiffusionPipeline.from_pretrained(tiny_model_dir("sd", cache_dir))
    pipe.save_pretrained(snapshot, variant=spec.variant)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(spec.revision)
    return home


def test_pull_offline_says_one_line_with_the_repo_the_revision_and_what_to_do(tmp_path: Path) -> None:
    result = _imagegen("pull", "sd-turbo", env={"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    spec = CATALOG["sd-turbo"]
    assert spec.source.removeprefix("hub:") in lines[0] and spec.revision in lines[0] and "HF_HUB_OFFLINE" in lines[0]


def test_models_say_which_weights_are_here(hub_with_sd_turbo: Path, cache_dir: Path, tmp_path: Path) -> None:
    env = {"HF_HOME": str(hub_with_sd_turbo), "IMAGEGEN_CACHE_DIR": str(cache_dir)}
    lines = _imagegen("models", env=env, cwd=tmp_path).stdout.splitlines()
    here = lines[0].index("here")
    column = {
        line.split()[0]: line[here:].split()[0] for line in lines[1:] if line[:1].strip() and line.split()[0] in CATALOG
    }
    assert column["sd-turbo"] == "yes" and column["sdxl-turbo"] == "no" and column["tiny-sd"] == "built-in"


def test_a_pulled_catalog_model_loads_its_variant_without_the_network(
    hub_with_sd_turbo: Path, cache_dir: Path, tmp_path: Path
) -> None:
    env = {"HF_HOME": str(hub_with_sd_turbo), "IMAGEGEN_CACHE_DIR": str(cache_dir)}
    result = _imagegen(
        "generate", "a lighthouse", "--model", "sd-turbo", "--size", "256x256", "-o", "out.png", env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert png((tmp_path / "out.png").read_bytes()).size == (256, 256)


def test_a_model_whose_weights_are_absent_is_a_503_that_names_the_pull_command(cache_dir: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    env = {
        "HF_HOME": str(tmp_path / "empty-hf"),
        "IMAGEGEN_CACHE_DIR": str(cache_dir),
        "IMAGEGEN_STORAGE_DIR": str(tmp_path / "images"),
        "IMAGEGEN_MODELS": "tiny-sd,sd-turbo",
    }
    process, url = start_server(env, log_path)
    try:
        for _ in range(2):
            response = httpx.post(
                f"{url}/v1/images/generations", timeout=60, json={"model": "sd-turbo", "prompt": "a lighthouse"}
            )
            assert response.status_code == 503
            assert response.headers["x-should-retry"] == "false"
            error = response.json()["error"]
            assert error["code"] == "model_unavailable" and "imagegen pull sd-turbo" in error["message"]
        models = httpx.get(f"{url}/v1/models/sd-turbo", timeout=10).json()
        assert models["state"] == "failed"
        # The other model is unaffected.
        ok = httpx.post(
            f"{url}/v1/images/generations",
            timeout=60,
            json={"model": "tiny-sd", "prompt": "x", "size": "64x64", "response_format": "b64_json"},
        )
        assert ok.status_code == 200
    finally:
        stop_server(process)
    log = log_path.read_text()
    assert log.count("imagegen pull sd-turbo") == 1, log
    assert "Traceback" not in log


def test_an_operators_models_file_adds_models_without_code(cache_dir: Path, tmp_path: Path) -> None:
    models_file = tmp_path / "models.toml"
    models_file.write_text(
        '[models.house]\nlike = "tiny-sd"\ndescription = "Our house model"\n'
        "sizes = [[64, 64], [128, 128]]\ndefault_size = [128, 128]\n"
    )
    env = {"IMAGEGEN_CACHE_DIR": str(cache_dir), "IMAGEGEN_MODELS_FILE": str(models_file)}
    listed = _imagegen("models", env=env, cwd=tmp_path)
    assert listed.returncode == 0 and "Our house model" in listed.stdout
    made = _imagegen("generate", "x", "--model", "house", "-o", "h.png", env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert png((tmp_path / "h.png").read_bytes()).size == (128, 128)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[models.a]\nlike = "tiny-sd"\nfamliy = "sd"\n', "[models.a]: unknown field 'famliy'"),
        ('[models.a]\nlike = "tiny-sd"\nmax_n = "many"\n', "[models.a]: field 'max_n'"),
        ('[models.b]\nsource = "hub:me/x"\nfamily = "sd"\ndescription = "d"\n', "[models.b]: field 'revision'"),
        ('[models.c]\nsource = "/no/such/folder"\nfamily = "sd"\ndescription = "d"\n', "[models.c]: field 'source'"),
        ('[models.d]\nlike = "nope"\n', "[models.d]: field 'like'"),
        ("models = 3\n", "expected one or more [models.<id>] tables"),
    ],
)
def test_a_bad_models_file_stops_the_start_naming_the_entry_and_field(text: str, says: str, tmp_path: Path) -> None:
    models_file = tmp_path / "models.toml"
    models_file.write_text(text)
    result = _imagegen("serve", "--port", "1", env={"IMAGEGEN_MODELS_FILE": str(models_file)}, cwd=tmp_path)
    assert result.returncode != 0 and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def sd2_checkpoint(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-sd as an A1111-style single file (LDM layout)."""
    from tests.ldm_checkpoint import write_sd2_checkpoint

    path = tmp_path_factory.mktemp("checkpoints") / "my-model.safetensors"
    write_sd2_checkpoint(tiny_model_dir("sd", cache_dir), path)
    return path


def _pixels(path: Path) -> bytes:
    return png(path.read_bytes()).convert("RGB").tobytes()


def test_a_single_file_checkpoint_loads_with_a_local_config(
    sd2_checkpoint: Path, cache_dir: Path, tmp_path: Path
) -> None:
    models_file = tmp_path / "models.toml"
    models_file.write_text(f'[models.mine]\nlike = "tiny-sd"\nsource = "{sd2_checkpoint}"\nconfig = "tiny-sd"\n')
    # Two processes: the same bytes only on the same code path, and torch's thread count is part of
    # it (it splits the float sums; 1 against 2 threads moves pixels by a level). Its default is the
    # machine's cores, so both processes are pinned to one, as OMP_NUM_THREADS lets an operator do.
    env = {"IMAGEGEN_CACHE_DIR": str(cache_dir), "IMAGEGEN_MODELS_FILE": str(models_file), "OMP_NUM_THREADS": "1"}
    for model, out in (("mine", "mine.png"), ("tiny-sd", "tiny.png")):
        result = _imagegen(
            "generate",
            "a lighthouse",
            "--model",
            model,
            "--seed",
            "5",
            "--size",
            "64x64",
            "-o",
            out,
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
    # The file holds tiny-sd's weights under their A1111 names: the same pixels, so every weight arrived.
    assert _pixels(tmp_path / "mine.png") == _pixels(tmp_path / "tiny.png")


def test_a_checkpoint_given_by_path_is_recognised_and_names_the_configs_it_needs(
    sd2_checkpoint: Path, cache_dir: Path, tmp_path: Path
) -> None:
    env = {"IMAGEGEN_CACHE_DIR": str(cache_dir), "HF_HOME": str(tmp_path / "empty-hf")}
    result = _imagegen("generate", "x", "--model", str(sd2_checkpoint), "-o", "x.png", env=env, cwd=tmp_path)
    # An SD 2.x file, served like sd-turbo, whose configs and tokenizers are not here yet.
    assert result.returncode != 0 and "imagegen pull sd-turbo" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_that_is_no_checkpoint_is_refused_by_name(cache_dir: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    lora = tmp_path / "style.safetensors"
    save_file({"unet.down_blocks.0.attentions.0.proj_in.lora_A.weight": torch.zeros(2, 2)}, lora)
    result = _imagegen("generate", "x", "--model", str(lora), env={"IMAGEGEN_CACHE_DIR": str(cache_dir)}, cwd=tmp_path)
    assert result.returncode != 0 and str(lora) in result.stderr and "not a single-file checkpoint" in result.stderr
    assert "Traceback" not in result.stderr
