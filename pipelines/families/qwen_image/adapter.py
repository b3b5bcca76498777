"""Qwen-Image: an MMDiT with Qwen2.5-VL prompts. Guidance is true classifier-free guidance
(`true_cfg_scale`), which runs only with a negative prompt; its VAE is a causal 3D one run on
single frames, normalised per channel (mean/std) instead of FLUX's scale and shift.

Facts the host needs (read from diffusers 0.42.1's `pipeline_qwenimage*.py`):
- `pipe.vae_scale_factor` is 8 (2 ** len(vae.temperal_downsample)); latents are packed 2x2, so sizes
  are multiples of 16. The pipelines do not raise on other sizes: they log a warning and the
  output is floored to a multiple of 16 (72x72 gives 64x64).
- One step gives NaN (a black image, and a numpy RuntimeWarning): Qwen-Image's scheduler has
  `shift_terminal=0.02`, which divides by zero when the only sigma is 1.0. Use 2 steps or more.
- Step-callback `latents` are packed, shape (B, (H/16)*(W/16), 64); the family's preview unpacks them
  to (B, 16, 1, H/8, W/8), undoes the normalisation (`latents * std + mean`, per channel), decodes
  and drops the frame axis, exactly as the pipelines' final decode.
- Guidance is `true_cfg_scale` (default 4.0), active only when a `negative_prompt` is given too;
  `guidance_scale` is ignored (with a warning) because the transformer has no guidance embedding.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from pipelines.contract.job import Job
from pipelines.families.base import Family, StepCallback

# What the model card passes as the negative prompt when there is none: guidance still runs.
_BLANK_NEGATIVE = " "


class QwenImageFamily(Family):
    def guidance(self, job: Job) -> dict[str, Any]:
        if job.guidance <= 1.0:
            return {"true_cfg_scale": 1.0}  # off; the pipeline warns unless told so
        return {"true_cfg_scale": job.guidance, "negative_prompt": job.negative_prompt or _BLANK_NEGATIVE}

    def _common(
        self, job: Job, generators: list[Any], on_step: StepCallback | None, batch: list[Job] | None = None
    ) -> dict[str, Any]:
        options = super()._common(job, generators, on_step, batch)
        if batch and "negative_prompt" in options:  # each job's own, image by image
            options["negative_prompt"] = [
                each.negative_prompt or _BLANK_NEGATIVE for each in batch for _ in range(each.n)
            ]
        return options

    def vae_latents(self, pipe: Any, latents: Any, height: int, width: int) -> Any:
        import torch

        latents = pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor)  # (B, C, 1, H, W)
        config = pipe.vae.config
        shape = (1, config.z_dim, 1, 1, 1)
        mean = torch.tensor(config.latents_mean).view(shape).to(latents.device, latents.dtype)
        std = torch.tensor(config.latents_std).view(shape).to(latents.device, latents.dtype)
        return latents * std + mean

    def preview(self, pipe: Any, latents: Any, job: Job) -> list[Image.Image]:
        latents = self.vae_latents(pipe, latents, job.height, job.width)
        decoded = pipe.vae.decode(latents.to(pipe.vae.dtype), return_dict=False)[0][:, :, 0]  # one frame
        return pipe.image_processor.postprocess(decoded.float(), output_type="pil")


# The negative prompt is not in the options: guidance() passes it with the scale it needs.
QWEN_IMAGE = QwenImageFamily("qwen-image", {}, takes_negative_prompt=False, call_options={}, packed_latents=True)
