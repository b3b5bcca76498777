"""What crosses the Modal boundary survives Modal's own serializer (`modal._serialization`, the
path every `.spawn`/`.remote_gen` argument, result and remote exception takes)."""

from __future__ import annotations

import time

from modal._serialization import deserialize, pickle_exception, serialize

from handlers.hosts.modal.engine import StreamStarted
from handlers.http_errors import http_headers, http_status
from pipelines.contract import errors
from pipelines.contract.job import ImageEvent, Job, Rendered
from pipelines.contract.usage import Usage


def across(value: object) -> object:
    return deserialize(serialize(value), None)


def test_a_job_crosses_unchanged_with_its_images_mask_and_deadline() -> None:
    job = Job(
        task="edit",
        model="flux2-klein",
        prompt="make it night",
        n=2,
        width=1024,
        height=768,
        output_width=1000,
        output_height=750,
        steps=4,
        guidance=1.0,
        seeds=(7, 8),
        negative_prompt=None,
        images=(b"\x89PNG first", b"\x89PNG reference"),
        mask=b"\x89PNG mask",
        strength=0.6,
        output_format="webp",
        output_compression=80,
        partial_images=2,
        deadline=time.time() + 140,
    )
    assert across(job) == job


def test_events_and_the_stream_header_cross_unchanged() -> None:
    for item in (
        ImageEvent("partial", 1, b"preview", partial_index=0),
        ImageEvent("completed", 0, b"image", usage=Usage(text_tokens=3, image_tokens=16, output_tokens=32)),
        StreamStarted("fc-01ABC"),
        StreamStarted(None),
        Rendered([b"one", b"two"], Usage(text_tokens=5, output_tokens=512)),
    ):
        assert across(item) == item


def test_an_api_error_raised_on_the_gpu_arrives_whole() -> None:
    for sent in (
        errors.invalid("mask", "The mask must match the image's size.", code="invalid_mask"),
        errors.model_busy("flux-schnell", 140, 10),
        errors.model_load_failed("sd-turbo", "no weights"),
        errors.cancelled(),
    ):
        arrived = deserialize(pickle_exception(sent), None)
        assert type(arrived) is type(sent)
        assert (arrived.message, arrived.param, arrived.code) == (sent.message, sent.param, sent.code)
        assert (http_status(arrived), http_headers(arrived)) == (http_status(sent), http_headers(sent))
