"""The GPU optimisations on the tiny models, on the CPU: each switches on and off, compiled and
eager images agree, the prompt cache gives the same images and hits, and what cannot be done
fails clearly. (Speed itself is scripts/bench_gpu.py's business.)

Compiles use the "aot_eager" backend (Dynamo and AOTAutograd, no code generation), which keeps each
test to a few seconds on two CPU cores; one test compiles through Inductor, as a GPU does, once.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines import optimize
from pipelines.contract import errors
from pipelines.contract.catalog import CATALOG
from pipelines.families import FAMILIES
from pipelines.model_cache import ModelCache
from pipelines.optimize import Optimizations
from pipelines.prompt_cache import prompt_cache
from pipelines.settings import EngineSettings
from pipelines.weights import weights_source

OFF = Optimizations.eager()


def _pipe(cache_dir: Path, model: str = "tiny-flux"):
    spec = CATALOG[model]
    source = weights_source(spec, cache_dir)
    return FAMILIES[spec.family].load(source, None, torch.float32, "cpu")


def _images(pipe, prompt: str = "a lighthouse", seed: int = 0) -> np.ndarray:
    with torch.inference_mode():
        return pipe(
            prompt=prompt,
            num_inference_steps=2,
            guidance_scale=0.0,
            height=64,
            width=64,
            generator=torch.Generator().manual_seed(seed),
            output_type="np",
        ).images


def _state(pipe) -> dict[str, bool]:
    """What each option leaves behind that can be seen on the pipeline."""
    model = optimize.denoiser(pipe)
    conv = next(each for each in pipe.vae.modules() if isinstance(each, torch.nn.Conv2d))
    return {
        "fuse_qkv": any(getattr(each, "fused_projections", False) for each in model.modules()),
        "channels_last": conv.weight.is_contiguous(memory_format=torch.channels_last) and conv.weight.shape[-1] > 1,
        "attention_backend": any(
            getattr(getattr(each, "processor", None), "_attention_backend", None) is not None
            for each in model.modules()
        ),
        "torch_compile": bool(optimize.compiled_blocks(pipe)),
        "prompt_cache": prompt_cache(pipe) is not None,
        "vae_tiling": bool(getattr(pipe.vae, "use_tiling", False)),
        "step_cache": bool(getattr(model, "is_cache_enabled", False)),
    }


ONE_AT_A_TIME = {
    "fuse_qkv": {"fuse_qkv": True},
    "channels_last": {"channels_last": True},
    "attention_backend": {"attention_backend": "_native_math"},
    "torch_compile": {"torch_compile": True, "compile_backend": "aot_eager", "warm_up": False},
    "prompt_cache": {"prompt_cache_size": 4},
    "vae_tiling": {"vae_tile_above": 512},
    "step_cache": {"step_cache": "fbc"},
}


@pytest.mark.parametrize("option", list(ONE_AT_A_TIME))
def test_each_option_switches_on_alone_and_stays_off_otherwise(cache_dir: Path, option: str) -> None:
    pipe = _pipe(cache_dir)
    assert optimize.apply(pipe, OFF, "cpu") == []
    assert not any(_state(pipe).values())
    chosen = {**vars(OFF), **ONE_AT_A_TIME[option]}
    applied = optimize.apply(pipe, Optimizations(**chosen), "cpu")
    assert applied == [option]
    assert {name for name, on in _state(pipe).items() if on} == {option}
    assert optimize.apply(pipe, Optimizations(**chosen), "cpu") == []  # never twice
    assert _images(pipe).shape == (1, 64, 64, 3)


def test_defaults_follow_the_device(cache_dir: Path) -> None:
    cpu = Optimizations().for_device("cpu")
    assert (cpu.fuse_qkv, cpu.channels_last, cpu.torch_compile, cpu.vae_tile_above) == (False, False, False, 0)
    assert cpu.prompt_cache_size > 0  # a repeated prompt is faster on the CPU too (bench_prompt_cache.py)
    cuda = Optimizations().for_device("cuda")
    assert (cuda.fuse_qkv, cuda.channels_last, cuda.torch_compile) == (True, True, True)
    assert cuda.prompt_cache_size > 0 and cuda.vae_tile_above == 2048
    assert (cuda.quantize, cuda.step_cache) == ("none", "none")  # they change pixels: asked for only
    pipe = _pipe(cache_dir)
    assert optimize.apply(pipe, None, "cpu") == ["prompt_cache"]  # else a CPU server's pipeline is as it was


def test_settings_reach_the_optimisations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGEN_TORCH_COMPILE", "false")
    monkeypatch.setenv("IMAGEGEN_COMPILE_CACHE_DIR", "/vol/inductor")
    monkeypatch.setenv("IMAGEGEN_STEP_CACHE", "fbc")
    chosen = Optimizations.from_settings(EngineSettings()).for_device("cuda")
    assert (chosen.torch_compile, chosen.compile_cache_dir, chosen.step_cache) == (False, "/vol/inductor", "fbc")
    assert chosen.fuse_qkv is True  # unset: the device decides
    monkeypatch.setenv("IMAGEGEN_QUANTIZE", "int3")
    with pytest.raises(ValueError, match="quantize"):
        EngineSettings()


@pytest.mark.parametrize("model", ["tiny-sd", "tiny-sdxl", "tiny-flux", "tiny-flux2"])
def test_optimised_and_eager_images_agree(cache_dir: Path, model: str) -> None:
    pipe = _pipe(cache_dir, model)
    eager = _images(pipe)
    applied = optimize.apply(
        pipe,
        Optimizations(
            fuse_qkv=True,
            channels_last=True,
            torch_compile=True,
            compile_backend="aot_eager",
            prompt_cache_size=4,
            warm_up=False,
        ),
        "cpu",
    )
    assert "torch_compile" in applied and optimize.compiled_blocks(pipe)
    np.testing.assert_allclose(_images(pipe), eager, atol=1e-4)


# Inductor's code generation touches torch.jit.script_method, which torch itself deprecates.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_inductor_compiled_images_agree_with_eager(cache_dir: Path, tmp_path: Path) -> None:
    """One real Inductor compile (C++ from the installed gcc), its kernels cached where we said."""
    pipe = _pipe(cache_dir, "tiny-sd")
    eager = _images(pipe)
    optimize.apply(
        pipe, Optimizations(torch_compile=True, compile_cache_dir=str(tmp_path / "inductor"), warm_up=False), "cpu"
    )
    np.testing.assert_allclose(_images(pipe), eager, atol=1e-4)
    assert any((tmp_path / "inductor").iterdir())


def test_a_load_warms_the_compiled_model_up(cache_dir: Path) -> None:
    """Through the model cache, as a server loads: compiled, and the graphs made at load, not on
    the first request."""
    from torch._dynamo.utils import counters

    graphs = counters["stats"]["unique_graphs"]
    cache = ModelCache(
        [CATALOG["tiny-sd"]],
        cache_dir=cache_dir,
        device="cpu",
        max_loaded=1,
        optimizations=Optimizations(torch_compile=True, compile_backend="aot_eager"),
    )
    pipe = cache.get("tiny-sd").pipe
    assert optimize.compiled_blocks(pipe)
    assert counters["stats"]["unique_graphs"] > graphs


def test_prompt_cache_gives_the_same_images_and_hits(cache_dir: Path) -> None:
    pipe = _pipe(cache_dir, "tiny-sdxl")
    first = _images(pipe, "a red boat", seed=3)
    optimize.apply(pipe, Optimizations(prompt_cache_size=1), "cpu")
    cache = prompt_cache(pipe)
    cached = [_images(pipe, "a red boat", seed=3), _images(pipe, "a red boat", seed=3)]
    assert (cache.misses, cache.hits) == (1, 1)
    np.testing.assert_array_equal(cached[0], first)
    np.testing.assert_array_equal(cached[1], first)
    _images(pipe, "a blue boat")  # a second prompt evicts the first (size 1)
    _images(pipe, "a red boat", seed=3)
    assert (cache.misses, cache.hits) == (3, 1)
    cache.clear()
    _images(pipe, "a red boat", seed=3)
    assert cache.misses == 4


def test_step_cache_is_skipped_where_diffusers_has_none(cache_dir: Path) -> None:
    pipe = _pipe(cache_dir, "tiny-sd")  # a UNet: no step cache in diffusers
    assert optimize.apply(pipe, Optimizations(**{**vars(OFF), "step_cache": "taylorseer"}), "cpu") == ["step_cache"]
    assert _images(pipe).shape == (1, 64, 64, 3)


@pytest.mark.skipif(importlib.util.find_spec("torchao") is not None, reason="torchao is installed here")
def test_fp8_without_torchao_fails_the_load_saying_why(cache_dir: Path) -> None:
    cache = ModelCache(
        [CATALOG["tiny-flux"]],
        cache_dir=cache_dir,
        device="cpu",
        max_loaded=1,
        optimizations=Optimizations(quantize="fp8"),
    )
    with pytest.raises(errors.APIError) as failure:
        cache.get("tiny-flux")
    assert "torchao" in failure.value.message and cache.state("tiny-flux")[0] == "failed"


def test_unknown_attention_backend_fails_clearly(cache_dir: Path) -> None:
    pipe = _pipe(cache_dir)
    with pytest.raises(optimize.OptimizationUnavailable, match="unknown attention backend 'fastest'"):
        optimize.apply(pipe, Optimizations(attention_backend="fastest"), "cpu")
    with pytest.raises(optimize.OptimizationUnavailable, match="downloads its kernel"):
        optimize.apply(pipe, Optimizations(attention_backend="flash_hub"), "cpu")


def test_a_compile_that_fails_at_warm_up_serves_eager(cache_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """On by default on CUDA, so it must never cost the model: a compiler fault at warm-up (here a
    backend that refuses every graph) leaves the blocks eager and the load succeeds."""
    from torch._dynamo import register_backend

    @register_backend(name="imagegen_refusing")
    def refusing(graph, example_inputs):
        raise RuntimeError("this backend refuses every graph")

    spec = CATALOG["tiny-sd"]
    cache = ModelCache(
        [spec],
        cache_dir=cache_dir,
        device="cpu",
        max_loaded=1,
        optimizations=Optimizations(torch_compile=True, compile_backend="imagegen_refusing"),
    )
    pipe = cache.get("tiny-sd").pipe
    assert cache.state("tiny-sd")[0] == "ready"
    assert not optimize.compiled_blocks(pipe)
    assert "compiling StableDiffusionPipeline failed; it serves uncompiled" in caplog.text
    assert _images(pipe).shape == (1, 64, 64, 3)


def test_a_move_to_the_gpu_applies_what_the_gpu_turns_on(cache_dir: Path) -> None:
    """A Modal container loads on the CPU (only the prompt cache applied) and applies again once on
    the GPU: only what is new then. The device string is all `apply` reads, so "cuda" is told here,
    not needed."""
    pipe = _pipe(cache_dir)
    assert optimize.apply(pipe, Optimizations(torch_compile=False), "cpu") == ["prompt_cache"]
    applied = optimize.apply(pipe, Optimizations(torch_compile=False), "cuda")
    assert applied == ["fuse_qkv", "channels_last", "vae_tiling"]
    assert optimize.apply(pipe, Optimizations(torch_compile=False), "cuda") == []
    assert pipe.vae.tile_sample_min_size == 2048 and pipe.vae.tile_latent_min_size == 256
    assert _images(pipe).shape == (1, 64, 64, 3)  # below the tiling threshold: decoded whole
