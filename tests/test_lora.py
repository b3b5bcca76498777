"""LoRA per request: real tiny LoRAs (made with peft, saved as diffusers saves them) on the tiny
models, through the real app and the official SDK."""

from __future__ import annotations

import base64
import io
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient
from openai import OpenAI
from PIL import Image

from handlers.hosts.local import create_local_app
from pipelines.batching import batch_key
from pipelines.contract.job import Job, LoraUse
from pipelines.weights import tiny_model_dir
from tests.jobs import small_job


def _save_lora(
    family: str,
    cache_dir: Path,
    dest: Path,
    *,
    seed: int,
    metadata: dict[str, str] | None = None,
    text_encoder: bool = False,
) -> None:
    """A random LoRA over the attention of `family`'s tiny UNet (or its text encoder), saved by
    diffusers' own writer."""
    import torch
    from diffusers import DiffusionPipeline
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    pipe = DiffusionPipeline.from_pretrained(tiny_model_dir(family, cache_dir))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if text_encoder:
            # PEFT itself: transformers' own add_adapter wants a newer PEFT than PyPI has.
            inject_adapter_in_model(
                LoraConfig(
                    r=4,
                    lora_alpha=8,
                    init_lora_weights=False,
                    target_modules=["q_proj", "k_proj", "v_proj", "out_proj"],
                ),
                pipe.text_encoder,
            )
            layers = {"text_encoder_lora_layers": get_peft_model_state_dict(pipe.text_encoder)}
        else:
            pipe.unet.add_adapter(
                LoraConfig(
                    r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False
                )
            )
            layers = {"unet_lora_layers": get_peft_model_state_dict(pipe.unet)}
    dest.parent.mkdir(parents=True, exist_ok=True)
    type(pipe).save_lora_weights(dest.parent, weight_name=dest.name, **layers)
    if metadata:  # as kohya's trainers write it
        raw = dest.read_bytes()
        (length,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + length])
        header["__metadata__"] = {**header.get("__metadata__", {}), **metadata}
        encoded = json.dumps(header).encode()
        encoded += b" " * (-len(encoded) % 8)
        dest.write_bytes(struct.pack("<Q", len(encoded)) + encoded + raw[8 + length :])


def _as_kohya(diffusers_file: Path, dest: Path, base: str) -> None:
    """The same LoRA as kohya's trainers write it: `lora_unet_<module with underscores>` keys,
    `lora_down`/`lora_up` weights, an `alpha` each (alpha = rank: scale 1), the base in metadata."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = {}
    for key, value in load_file(diffusers_file).items():
        module, _, kind = key.removeprefix("unet.").rpartition(".lora_")
        name = "lora_unet_" + module.replace(".", "_")
        tensors[f"{name}.lora_{'down' if kind.startswith('A') else 'up'}.weight"] = value
        if kind.startswith("A"):
            tensors[f"{name}.alpha"] = torch.tensor(float(value.shape[0]))
    save_file(tensors, dest, metadata={"ss_base_model_version": base})


@pytest.fixture(scope="module")
def lora_dir(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loras")
    _save_lora("sd", cache_dir, folder / "ink.safetensors", seed=1)
    _save_lora("sd", cache_dir, folder / "glow.safetensors", seed=2)
    _as_kohya(folder / "ink.safetensors", folder / "ink-kohya.safetensors", base="sd_v2")
    _save_lora("sd", cache_dir, folder / "sd" / "words.safetensors", seed=6, text_encoder=True)  # the prompt side
    _save_lora("sdxl", cache_dir, folder / "sdxl" / "pixel.safetensors", seed=3)
    # Made for SDXL, and the file does not say so: only loading it can tell.
    _save_lora("sdxl", cache_dir, folder / "mystery.safetensors", seed=4)
    _save_lora(
        "sdxl", cache_dir, folder / "kohya-xl.safetensors", seed=5, metadata={"ss_base_model_version": "sdxl_base_v1-0"}
    )
    return folder


@pytest.fixture(scope="module")
def sdk(make_settings, lora_dir: Path) -> Iterator[OpenAI]:
    app = create_local_app(make_settings(lora_dir=lora_dir))
    with TestClient(app, raise_server_exceptions=False) as http:
        yield OpenAI(api_key="x", base_url="http://testserver/v1", http_client=http, max_retries=0)


def _generate(sdk: OpenAI, lora: list | None = None, model: str = "tiny-sd") -> bytes:
    extra = {"seed": 7, "num_inference_steps": 2, **({"lora": lora} if lora is not None else {})}
    response = sdk.images.generate(
        model=model, prompt="a lighthouse", size="64x64", response_format="b64_json", extra_body=extra
    )
    return base64.b64decode(response.data[0].b64_json)


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_a_lora_changes_the_image_and_leaves_the_next_request_clean(sdk: OpenAI) -> None:
    plain = _generate(sdk)
    inked = _generate(sdk, [{"name": "ink", "scale": 1.0}])
    assert (_pixels(inked) != _pixels(plain)).mean() > 0.1
    assert np.array_equal(_pixels(_generate(sdk)), _pixels(plain))  # pixel for pixel: the adapter is off again
    both = _generate(sdk, [{"name": "ink", "scale": 1.0}, {"name": "glow", "scale": 0.5}])
    assert (_pixels(both) != _pixels(inked)).mean() > 0.1
    assert np.array_equal(_pixels(_generate(sdk, [{"name": "ink"}])), _pixels(inked))  # loaded once, the same each time
    assert np.array_equal(_pixels(_generate(sdk)), _pixels(plain))


def test_scale_zero_is_the_same_as_no_lora(sdk: OpenAI) -> None:
    assert np.array_equal(_pixels(_generate(sdk, [{"name": "ink", "scale": 0.0}])), _pixels(_generate(sdk)))


def test_the_png_says_which_loras_made_it(sdk: OpenAI) -> None:
    image = Image.open(io.BytesIO(_generate(sdk, [{"name": "ink", "scale": 0.8}])))
    assert "LoRA: ink:0.8" in image.info["parameters"]


def _bad(sdk: OpenAI, lora: list, model: str = "tiny-sd") -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as caught:
        _generate(sdk, lora, model)
    return caught.value


def test_unknown_lora_scale_out_of_bounds_and_another_familys_lora_are_400s_on_lora(sdk: OpenAI) -> None:
    unknown = _bad(sdk, [{"name": "nope"}])
    assert unknown.body["param"] == "lora" and "ink" in unknown.body["message"]
    assert _bad(sdk, [{"name": "ink", "scale": 2.5}]).body["param"] == "lora"
    scoped = _bad(sdk, [{"name": "pixel"}])  # in the sdxl/ folder
    assert (
        scoped.body["param"] == "lora" and scoped.body["code"] == "lora_mismatch" and "sdxl" in scoped.body["message"]
    )
    declared = _bad(sdk, [{"name": "kohya-xl"}])  # its metadata names SDXL
    assert declared.body["code"] == "lora_mismatch"
    assert _bad(sdk, [{"name": "ink"}, {"name": "ink"}]).body["param"] == "lora"


def test_a_lora_that_only_loading_can_reject_is_a_400_and_the_model_still_works(sdk: OpenAI) -> None:
    plain = _generate(sdk)
    error = _bad(sdk, [{"name": "mystery"}])
    assert error.body["param"] == "lora" and error.body["code"] == "lora_mismatch"
    assert np.array_equal(_pixels(_generate(sdk)), _pixels(plain))


def test_the_lora_for_its_family_works_on_that_family(sdk: OpenAI) -> None:
    plain = _generate(sdk, model="tiny-sdxl")
    assert (_pixels(_generate(sdk, [{"name": "pixel"}], "tiny-sdxl")) != _pixels(plain)).mean() > 0.1


def test_a_model_lists_the_loras_it_takes(sdk: OpenAI) -> None:
    sd = sdk.models.retrieve("tiny-sd").model_extra["loras"]
    assert {lora["name"] for lora in sd} == {"ink", "ink-kohya", "glow", "mystery", "words"}
    xl = {lora["name"]: lora for lora in sdk.models.retrieve("tiny-sdxl").model_extra["loras"]}
    assert set(xl) == {"ink", "glow", "pixel", "mystery", "kohya-xl"}  # not ink-kohya: its metadata says SD 2
    assert xl["pixel"]["family"] == xl["kohya-xl"]["family"] == "sdxl"
    # A file that does not say what it is for is offered everywhere, and checked when it loads.
    assert xl["mystery"]["family"] is None
    flux = sdk.models.retrieve("tiny-flux").model_extra["loras"]
    assert {lora["name"] for lora in flux} == {"ink", "glow", "mystery"}


def test_a_kohya_lora_gives_the_same_image_as_the_same_weights_in_diffusers_layout(sdk: OpenAI) -> None:
    assert np.array_equal(_pixels(_generate(sdk, [{"name": "ink-kohya"}])), _pixels(_generate(sdk, [{"name": "ink"}])))


def test_edits_take_lora_as_multipart_parts(sdk: OpenAI) -> None:
    photo = io.BytesIO()
    Image.new("RGB", (64, 64), (40, 120, 200)).save(photo, format="PNG")

    def edit(*parts: str) -> np.ndarray:
        extra = {"seed": 3, "num_inference_steps": 2, **({"lora": list(parts)} if parts else {})}
        response = sdk.images.edit(
            model="tiny-sd",
            image=("p.png", photo.getvalue(), "image/png"),
            prompt="at night",
            response_format="b64_json",
            extra_body=extra,
        )
        return _pixels(base64.b64decode(response.data[0].b64_json))

    plain = edit()
    inked = edit("ink:1")
    assert (inked != plain).mean() > 0.05
    assert np.array_equal(edit('[{"name": "ink", "scale": 1}]'), inked)
    assert np.array_equal(edit("ink:0"), plain)
    with pytest.raises(openai.BadRequestError) as caught:
        edit("ink:lots")
    assert caught.value.body["param"] == "lora"


@pytest.mark.parametrize(
    "lora", [[{"name": f"l{i}"} for i in range(5)], [{"name": "ink", "scale": 2.5}], [{"name": "ink", "scale": -2.01}]]
)
def test_how_many_loras_and_their_scale_are_bounded_at_the_edge(api: TestClient, lora: list) -> None:
    """Refused by the request's schema, before any LoRA is looked up (this server has no LoRA folder:
    a lookup would say how to enable one); four LoRAs at ±2 pass the schema and reach the lookup."""
    response = api.post("/v1/images/generations", json={"model": "tiny-sd", "prompt": "x", "lora": lora})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "lora" and error["code"] != "lora_disabled", error
    at_the_bounds = [{"name": f"l{i}", "scale": 2.0 if i % 2 else -2.0} for i in range(4)]
    response = api.post("/v1/images/generations", json={"model": "tiny-sd", "prompt": "x", "lora": at_the_bounds})
    assert response.json()["error"]["code"] == "lora_disabled"


def test_without_a_lora_folder_a_lora_is_a_400_that_says_how_to_enable_it(api: TestClient) -> None:
    response = api.post("/v1/images/generations", json={"model": "tiny-sd", "prompt": "x", "lora": [{"name": "a"}]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "lora" and "IMAGEGEN_LORA_DIR" in error["message"]


def test_jobs_batch_only_with_jobs_of_the_same_lora_set() -> None:
    base = small_job(model="m", prompt="p")
    ink = LoraUse("ink", "/l/ink.safetensors", 1.0)
    with_ink = Job(**{**base.__dict__, "loras": (ink,)})
    assert batch_key(with_ink) != batch_key(base)
    assert batch_key(with_ink) == batch_key(Job(**{**base.__dict__, "prompt": "q", "loras": (ink,)}))
    assert batch_key(with_ink) != batch_key(Job(**{**base.__dict__, "loras": (LoraUse("ink", ink.source, 0.5),)}))


def test_loras_hold_with_fused_attention_and_cached_prompts(make_settings, lora_dir: Path) -> None:
    """The GPU defaults (fused q/k/v, the prompt-embedding cache) switched on here on the CPU: a LoRA
    still reaches the attention, and a prompt embedded before it is not reused after."""

    def client_for(**settings) -> TestClient:
        return TestClient(create_local_app(make_settings(lora_dir=lora_dir, **settings)), raise_server_exceptions=False)

    with client_for() as plain_http, client_for(fuse_qkv=True, prompt_cache_size=8) as fast_http:
        plain = OpenAI(api_key="x", base_url="http://testserver/v1", http_client=plain_http, max_retries=0)
        fast = OpenAI(api_key="x", base_url="http://testserver/v1", http_client=fast_http, max_retries=0)
        before = _generate(fast)
        inked = _generate(fast, [{"name": "ink"}])
        assert np.abs(_pixels(inked).astype(int) - _pixels(_generate(plain, [{"name": "ink"}]))).max() <= 1
        assert (_pixels(inked) != _pixels(before)).mean() > 0.1
        assert np.array_equal(_pixels(_generate(fast)), _pixels(before))
        # A LoRA on the text encoder: the same prompt embeds otherwise, so the cache must not answer.
        worded = _generate(fast, [{"name": "words"}])
        assert (_pixels(worded) != _pixels(before)).mean() > 0.1
        assert np.abs(_pixels(worded).astype(int) - _pixels(_generate(plain, [{"name": "words"}]))).max() <= 1
        assert np.array_equal(_pixels(_generate(fast)), _pixels(before))
