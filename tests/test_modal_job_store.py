"""Jobs on Modal: records on a `modal.Dict` (faked as modal's source behaves, tests/modal_control_plane.py)
are one truth for every front container: a job accepted by one is seen, finished and cancelled
from another, and the records go when their images do."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient

from handlers.app import create_app
from handlers.hosts.local import local_worker, served_models
from handlers.hosts.modal.job_store import ModalDictJobStore
from handlers.jobs.leases import Leases
from handlers.jobs.store import SQLiteJobStore
from handlers.stores.folder import LocalImageStore
from pipelines.local_engine import LocalEngine
from tests.conftest import API_KEY
from tests.job_helpers import ASYNC, with_pixels
from tests.modal_control_plane import Dict

OTHER_KEY = "sk-modal-other-0123456789"
SMALL = {"model": "tiny-sd", "prompt": "a lighthouse", "size": "64x64", "response_format": "b64_json"}
LONG = {"model": "tiny-sd", "prompt": "a long job", "size": "256x256", "num_inference_steps": 50}


@pytest.fixture(scope="module")
def fronts(make_settings) -> Iterator[tuple[TestClient, TestClient, Dict]]:
    """Two front containers sharing one Dict, as on Modal (no recovery: no front owns another's jobs)."""
    records = Dict()
    with ExitStack() as stack:
        clients = []
        for _ in range(2):
            settings = make_settings(models=["tiny-sd"], api_keys=[API_KEY, OTHER_KEY], jobs_in_engine=1)
            served = served_models(settings)
            engine = LocalEngine(local_worker(served, settings), settings)
            store = LocalImageStore(settings.storage_dir, settings.image_ttl_seconds)
            app = create_app(settings, engine, store, served, ModalDictJobStore(records), recover_jobs=False)
            client = stack.enter_context(TestClient(app, headers={"authorization": f"Bearer {API_KEY}"}))
            clients.append(client)
        yield clients[0], clients[1], records


def wait(client: TestClient, job_id: str, until, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while not until(found := client.get(f"/v1/images/jobs/{job_id}").json()):
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    return found


def test_a_job_accepted_by_one_front_is_finished_and_fetched_from_another(fronts) -> None:
    a, b, _ = fronts
    body = {**SMALL, "seed": 4, "num_inference_steps": 2}
    accepted = a.post("/v1/images/generations", json=body, headers=ASYNC)
    assert accepted.status_code == 202
    job_id = accepted.json()["id"]
    done = wait(b, job_id, lambda found: found["status"] == "completed")
    sync = a.post("/v1/images/generations", json=body).json()
    assert with_pixels(done["result"])["data"] == with_pixels(sync)["data"]
    assert b.get("/v1/images/jobs").json()["data"][0]["id"] == job_id
    other = {"authorization": f"Bearer {OTHER_KEY}"}
    assert b.get(f"/v1/images/jobs/{job_id}", headers=other).status_code == 404


def test_one_front_cancels_the_job_another_runs(fronts) -> None:
    a, b, _ = fronts
    # Long enough (on a busy CPU too) that the cancel lands while it runs: it stops within a flush.
    longer = {**LONG, "size": "512x512", "n": 2}  # the tiny models take at most 50 steps
    job_id = a.post("/v1/images/generations", json=longer, headers=ASYNC).json()["id"]
    seen = wait(b, job_id, lambda found: found["progress"]["step"] >= 1)  # its progress reaches the Dict
    assert seen["status"] == "in_progress"
    assert b.delete(f"/v1/images/jobs/{job_id}").json()["status"] == "cancelled"
    # The front running it reads the cancel at its next progress write and stops the run.
    ran = wait(a, job_id, lambda found: found["status"] == "cancelled", timeout=60)
    assert ran["progress"]["step"] < ran["progress"]["steps"]
    deadline = time.monotonic() + 120
    while a.get("/health/ready").json()["models"]["tiny-sd"]["running"]:
        assert time.monotonic() < deadline, "the cancelled job still holds the model"
        time.sleep(0.05)


def test_records_go_when_their_images_do(fronts) -> None:
    a, _, records = fronts
    job_id = a.post("/v1/images/generations", json={**SMALL, "num_inference_steps": 1}, headers=ASYNC).json()["id"]
    done = wait(a, job_id, lambda found: found["status"] == "completed")
    store = ModalDictJobStore(records)
    assert store.get(job_id).payload is None  # a finished job keeps its result, not its request
    store.sweep(now=done["expires_at"] - 1)  # earlier tests' records may go; not this one yet
    assert store.get(job_id) is not None
    assert store.sweep(now=done["expires_at"]) >= 1
    assert store.get(job_id) is None
    assert a.get(f"/v1/images/jobs/{job_id}").status_code == 404


class FarDict(Dict):
    """A modal.Dict whose every call takes a round trip, so fronts' calls interleave as on Modal."""

    def _get(self, *args, **kwargs):
        time.sleep(0.002)
        return super()._get(*args, **kwargs)

    def _put(self, *args, **kwargs):
        time.sleep(0.002)
        return super()._put(*args, **kwargs)


@pytest.mark.parametrize("kind", ["modal.Dict", "SQLite"])
def test_a_lapsed_lease_is_taken_by_exactly_one_front_and_a_live_one_by_none(kind: str, tmp_path) -> None:
    store = ModalDictJobStore(FarDict()) if kind == "modal.Dict" else SQLiteJobStore(tmp_path / "jobs.sqlite3")
    fronts = [f"front-{n}" for n in range(8)]
    assert store.hold("imgjob_a", "front-gone", 0.0)  # its front died at once: the lease lapsed
    barrier = threading.Barrier(len(fronts))

    def take(front: str) -> bool:
        barrier.wait()
        return store.hold("imgjob_a", front, 60.0)

    with ThreadPoolExecutor(len(fronts)) as pool:
        taken = list(pool.map(take, fronts))
    assert taken.count(True) == 1
    winner = fronts[taken.index(True)]
    assert store.holder("imgjob_a") == winner
    assert not any(store.hold("imgjob_a", front, 60.0) for front in fronts if front != winner)  # live
    assert store.hold("imgjob_a", winner, 60.0)  # its holder renews it
    assert not Leases(store).take_lapsed("imgjob_a")
