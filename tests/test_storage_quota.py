"""The temp-image store is bounded: URLs handed out live their TTL, new images wait for room."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from handlers.hosts.local import create_local_app
from handlers.http_errors import http_headers, http_status
from handlers.stores.folder import LocalImageStore
from pipelines.contract.errors import APIError
from tests.conftest import png

SMALL = {"model": "tiny-sd", "prompt": "x", "size": "64x64"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_new_image_that_does_not_fit_is_refused_and_the_old_ones_keep_their_urls(tmp_path: Path) -> None:
    clock = Clock()
    store = LocalImageStore(tmp_path, ttl_seconds=60, max_bytes=1000, clock=clock)
    first, second = store.put(b"a" * 400, "png"), store.put(b"b" * 400, "png")
    clock.now += 20
    with pytest.raises(APIError) as caught:
        store.put(b"c" * 400, "png")
    error = caught.value
    assert (http_status(error), error.code, http_headers(error)["x-should-retry"]) == (503, "storage_full", "true")
    assert http_headers(error)["retry-after"] == "40"  # when the oldest image expires and frees its room
    assert store.get(first) == b"a" * 400 and store.get(second) == b"b" * 400
    assert store.usage() == (800, 2) and len(list(tmp_path.iterdir())) == 2  # nothing half written stays
    clock.now += 41
    third = store.put(b"c" * 400, "png")  # the expired ones went to make room
    assert store.get(third) == b"c" * 400 and store.get(first) is None
    assert store.usage() == (400, 1)


def test_near_the_quota_the_expired_go_before_the_next_sweep(tmp_path: Path) -> None:
    clock = Clock()
    store = LocalImageStore(tmp_path, ttl_seconds=60, max_bytes=1000, clock=clock)
    store.put(b"a" * 500, "png")
    clock.now += 61
    store.put(b"b" * 450, "png")  # fits even with the expired one (950), but past 90%: it goes now
    assert store.usage() == (450, 1) and len(list(tmp_path.iterdir())) == 1


def test_the_count_survives_a_restart(tmp_path: Path) -> None:
    LocalImageStore(tmp_path, ttl_seconds=60, max_bytes=1000).put(b"a" * 300, "png")
    assert LocalImageStore(tmp_path, ttl_seconds=60, max_bytes=1000).usage() == (300, 1)


def test_through_the_api_a_full_store_is_a_retryable_503_or_by_setting_an_inline_image(
    make_settings, tmp_path: Path
) -> None:
    settings = make_settings(models="tiny-sd", storage_dir=tmp_path / "full", storage_max_bytes=1)
    with TestClient(create_local_app(settings)) as api:
        refused = api.post("/v1/images/generations", json=SMALL)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "storage_full"
        assert refused.headers["x-should-retry"] == "true" and int(refused.headers["retry-after"]) >= 1
        assert api.post("/v1/images/generations", json={**SMALL, "response_format": "b64_json"}).status_code == 200
    inline = make_settings(models="tiny-sd", storage_dir=tmp_path / "inline", storage_max_bytes=1, storage_full="b64")
    with TestClient(create_local_app(inline)) as api:
        (item,) = api.post("/v1/images/generations", json=SMALL).json()["data"]
        assert "url" not in item and png(base64.b64decode(item["b64_json"])).size == (64, 64)


def _images_in(folder: Path) -> list[Path]:
    """The temp images in `folder` (the async jobs' database lives beside them)."""
    return [path for path in folder.iterdir() if not path.name.startswith("jobs.sqlite3")]


def test_metrics_show_the_stores_bytes_and_files(make_settings, tmp_path: Path) -> None:
    settings = make_settings(models="tiny-sd", storage_dir=tmp_path, storage_max_bytes=10**9)
    with TestClient(create_local_app(settings)) as api:
        api.post("/v1/images/generations", json={**SMALL, "n": 2})
        stored = sum(path.stat().st_size for path in _images_in(tmp_path))
        metrics = api.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    lines = dict(line.rsplit(" ", 1) for line in metrics.text.splitlines() if line and not line.startswith("#"))
    assert float(lines["imagegen_store_files"]) == 2
    assert float(lines["imagegen_store_bytes"]) == stored
    assert float(lines["imagegen_store_max_bytes"]) == 10**9


def test_a_full_store_is_found_out_before_the_work_not_after(make_settings, tmp_path: Path) -> None:
    """Room for n images is held before the job runs: a request that cannot fit costs no GPU
    time (the SDK's retries of the 503 redo nothing), and leaves no file behind."""
    from handlers.stores.room import most_bytes
    from tests.jobs import small_job

    per_image = most_bytes(small_job())  # the most a 64x64 image can take
    store_dir = tmp_path / "images"
    settings = make_settings(models="tiny-sd", storage_dir=store_dir, storage_max_bytes=3 * per_image)
    with TestClient(create_local_app(settings)) as api:
        refused = api.post("/v1/images/generations", json={**SMALL, "n": 4, "response_format": "url"})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "storage_full"
        assert _images_in(store_dir) == []
        batches = [line for line in api.get("/metrics").text.splitlines() if line.startswith("imagegen_batches_total")]
        assert batches == []  # the model never ran
        made = api.post("/v1/images/generations", json={**SMALL, "n": 2, "response_format": "url"})
        assert made.status_code == 200 and len(made.json()["data"]) == 2
        stored = sum(path.stat().st_size for path in _images_in(store_dir))
        assert api.app.state.services.store.usage() == (stored, 2)  # what was held and not used went back


def test_images_stored_for_an_answer_never_given_are_deleted(tmp_path: Path) -> None:
    import asyncio

    from handlers.stores.room import Room
    from tests.jobs import small_job

    store = LocalImageStore(tmp_path, ttl_seconds=60, max_bytes=10**7)
    job = small_job()

    async def half_way() -> None:
        room = await Room.hold(store, job)
        assert store.usage()[0] >= job.n * 64 * 64 * 4  # held before any image exists
        room.put(b"a" * 300, "png")
        await room.close(handed_out=False)  # the answer failed after one image was stored

    asyncio.run(half_way())
    assert store.usage() == (0, 0) and list(tmp_path.iterdir()) == []
