"""Jobs on Modal: records on a `modal.Dict` (faked as modal's source behaves, tests/modal_control_plane.py)
are one truth for every front container: a job accepted by one is seen, finished and cancelled
from another, and the records go when their images do."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from handlers.app import create_app
from handlers.hosts.local import local_worker, served_models
from handlers.hosts.modal.job_store import ModalDictJobStore
from handlers.hosts.modal.volume import VolumeImageStore
from handlers.jobs.leases import Leases
from handlers.jobs.outbox import Outbox
from handlers.jobs.records import JobRecord, end
from handlers.jobs.ssrf import WebhookGuard
from handlers.jobs.store import SQLiteJobStore
from handlers.jobs.webhooks import WebhookSender
from handlers.stores.core import stamped_time
from pipelines.local_engine import LocalEngine
from tests.conftest import API_KEY
from tests.job_helpers import ASYNC, Receiver, with_pixels
from tests.modal_control_plane import Dict
from tests.test_modal_volume_store import SharedVolume

OTHER_KEY = "sk-modal-other-0123456789"
SMALL = {"model": "tiny-sd", "prompt": "a lighthouse", "size": "64x64", "response_format": "b64_json"}
LONG = {"model": "tiny-sd", "prompt": "a long job", "size": "256x256", "num_inference_steps": 50}


@pytest.fixture(scope="module")
def fronts(make_settings) -> Iterator[tuple[TestClient, TestClient, Dict]]:
    """Two front containers sharing one Dict and one images Volume (each its own mount), as on
    Modal (no recovery: no front owns another's jobs)."""
    records, images = Dict(), SharedVolume()
    with ExitStack() as stack:
        clients = []
        for _ in range(2):
            settings = make_settings(models=["tiny-sd"], api_keys=[API_KEY, OTHER_KEY], jobs_in_engine=1)
            served = served_models(settings)
            engine = LocalEngine(local_worker(served, settings), settings)
            mount = images.mount(settings.storage_dir)
            store = VolumeImageStore(settings.storage_dir, settings.image_ttl_seconds, mount)
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


def test_a_base64_result_is_kept_on_the_volume_not_in_the_dict(fronts) -> None:
    a, b, records = fronts
    body = {**SMALL, "n": 3, "seed": 8, "num_inference_steps": 1}
    job_id = a.post("/v1/images/generations", json=body, headers=ASYNC).json()["id"]
    done = wait(b, job_id, lambda found: found["status"] == "completed")  # read on the other front
    sync = b.post("/v1/images/generations", json=body).json()
    assert with_pixels(done["result"]) == with_pixels({**sync, "created": done["result"]["created"]})
    entry = records.get("job:" + job_id)
    kept = json.loads(entry["record"])
    assert kept["result"] is None and len(entry["record"]) < 4096  # three images' worth are elsewhere
    blob = kept["result_blob"]
    assert len(json.dumps(done["result"])) > 3 * 4096
    assert stamped_time(blob) >= done["finished_at"]  # it lives (the image TTL) as long as the record
    assert a.get(f"/v1/temp-images/{blob}").status_code == 404  # never served as an image
    # The job as a client sees it is the same wherever it is read from.
    assert a.get(f"/v1/images/jobs/{job_id}").json() == done


SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def front_outbox(records: Dict) -> Outbox:
    sender = WebhookSender(SECRET, WebhookGuard(["127.0.0.1"]), attempts=3, backoff_seconds=0.05, timeout_seconds=30)
    return Outbox(ModalDictJobStore(records), sender, grace_seconds=120)


def test_a_dead_fronts_owed_webhook_is_sent_once_by_the_fronts_still_up() -> None:
    records, receiver = Dict(), Receiver(failures=0)
    store = ModalDictJobStore(records)
    # What a front left when it died: a completed job, its webhook owed and claimed by it.
    record = JobRecord(
        id="imgjob_" + "d" * 22,
        owner="o",
        endpoint="generations",
        model="tiny-sd",
        steps=2,
        images=1,
        webhook_url=receiver.url,
    )
    end(record, "completed", 3600, result={"created": 1, "data": [{"url": "https://example.com/a.png"}]})
    store.put(record)
    assert store.claim_webhook(record.id, until=time.time() + 3600)

    async def both_fronts_sweep() -> None:
        fronts = [front_outbox(records), front_outbox(records)]
        await asyncio.gather(*(front.send_owed() for front in fronts))
        await asyncio.gather(*(front.close() for front in fronts))  # each waits for what it sends

    try:
        asyncio.run(both_fronts_sweep())
        assert receiver.received == []  # its claim has not lapsed: it may still be sending
        store.claim_webhook(record.id, until=time.time() - 1, take_over=True)  # now it has
        asyncio.run(both_fronts_sweep())
        asyncio.run(both_fronts_sweep())  # settled: never sent again
    finally:
        receiver.close()
    [(headers, body, status)] = receiver.received
    assert status == 204 and headers["webhook-id"] == f"msg_{record.id}_completed"
    event = Webhook(SECRET).verify(body, {name.lower(): value for name, value in headers.items()})
    assert event["data"]["result"] == record.result
    assert store.owed() == []


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
