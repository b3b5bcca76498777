"""Async jobs through a real server and the official SDK: `Prefer: respond-async` answers 202 and a
job whose result is the synchronous body; cancelling; keys that cannot see each other's jobs;
limits; signed webhooks and the addresses they refuse to reach."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import API_KEY, ROOT, Server, png, png_bytes, start_server, stop_server
from tests.job_helpers import (
    ASYNC,
    LONG,
    SMALL,
    UNTIL_CANCELLED,
    PrivateDNS,
    Receiver,
    job,
    submit,
    wait_for,
    with_pixels,
)

OTHER_KEY = "sk-jobs-other-0123456789"
LIMITED_KEY = "sk-jobs-limited-0123456789"  # the one that meets the per-key limit
SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
PER_KEY = 3


@pytest.fixture(scope="module")
def dns_server() -> Iterator[PrivateDNS]:
    server = PrivateDNS("10.1.2.3")
    yield server
    server.close()


@pytest.fixture(scope="module")
def jobs_server(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory, dns_server: PrivateDNS) -> Iterator[Server]:
    """Three keys, webhooks on (127.0.0.1 allowed besides public addresses), names resolved by a
    local DNS server, one job per model in the engine at a time."""
    storage = tmp_path_factory.mktemp("jobs-images")
    log_path = tmp_path_factory.mktemp("jobs-log") / "server.log"
    env = {
        "IMAGEGEN_CACHE_DIR": str(cache_dir),
        "IMAGEGEN_STORAGE_DIR": str(storage),
        "IMAGEGEN_API_KEYS": f"{API_KEY},{OTHER_KEY},{LIMITED_KEY}",
        "IMAGEGEN_MODELS": "tiny-sd",
        "IMAGEGEN_JOBS_IN_ENGINE": "1",
        "IMAGEGEN_JOBS_PER_KEY": str(PER_KEY),
        "IMAGEGEN_WEBHOOK_SECRET": SECRET,
        "IMAGEGEN_WEBHOOK_HOSTS": "127.0.0.1",
        "IMAGEGEN_WEBHOOK_NAMESERVER": dns_server.nameserver,
        "IMAGEGEN_WEBHOOK_BACKOFF_SECONDS": "0.2",
    }
    process, url = start_server(env, log_path)
    yield Server(url=url, storage_dir=storage, log_path=log_path)
    stop_server(process)


_CLIENTS: dict[tuple[str, str], OpenAI] = {}


def sdk(server: Server, key: str = API_KEY) -> OpenAI:
    """The official SDK for `key`, one per key and server (closed after the module's tests)."""
    if (server.url, key) not in _CLIENTS:
        _CLIENTS[server.url, key] = OpenAI(api_key=key, base_url=f"{server.url}/v1", max_retries=0, timeout=120)
    return _CLIENTS[server.url, key]


@pytest.fixture(scope="module", autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    for client in _CLIENTS.values():
        client.close()
    _CLIENTS.clear()


def test_a_job_answers_202_and_its_result_is_the_synchronous_body(jobs_server: Server) -> None:
    client = sdk(jobs_server)
    raw, accepted = submit(client, **SMALL, n=2, extra_body={"seed": 7, "num_inference_steps": 2})
    assert raw.status_code == 202
    assert raw.headers["location"] == f"{jobs_server.url}/v1/images/jobs/{accepted['id']}"
    assert accepted["object"] == "image.job" and accepted["status"] in ("queued", "in_progress")
    assert isinstance(accepted["created_at"], int)

    done = wait_for(client, accepted["id"])
    assert done["status"] == "completed", done
    assert done["progress"] == {"step": 2, "steps": 2, "images_done": 2, "images": 2}
    sync = client.images.generate(**SMALL, n=2, extra_body={"seed": 7, "num_inference_steps": 2}).model_dump(
        exclude_none=True
    )
    result = dict(done["result"])
    assert abs(result.pop("created") - sync.pop("created")) < 600
    assert with_pixels(result) == with_pixels(sync)  # same seeds, same pixels, same fields


def test_an_edit_runs_as_a_job(jobs_server: Server) -> None:
    client = sdk(jobs_server)
    image = png_bytes(png(base64.b64decode(client.images.generate(**SMALL).data[0].b64_json)))
    raw = client.images.with_raw_response.edit(
        model="tiny-sd",
        prompt="a red door",
        image=("photo.png", image, "image/png"),
        response_format="b64_json",
        extra_headers=ASYNC,
        extra_body={"num_inference_steps": 2, "seed": 3},
    )
    assert raw.status_code == 202
    accepted = json.loads(raw.text)
    assert accepted["endpoint"] == "/v1/images/edits"
    done = wait_for(client, accepted["id"])
    assert done["status"] == "completed", done
    assert png(base64.b64decode(done["result"]["data"][0]["b64_json"])).size == (64, 64)


def test_a_bad_request_is_still_its_400_and_never_a_job(jobs_server: Server) -> None:
    client = sdk(jobs_server)
    with pytest.raises(openai.BadRequestError) as caught:
        submit(client, **{**SMALL, "size": "100x7"})
    assert caught.value.body["param"] == "size"
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(**SMALL, extra_body={"webhook_url": "https://example.com/hook"})
    assert caught.value.body["param"] == "webhook_url"  # a webhook needs a job


def test_cancelling_a_queued_and_a_running_job(jobs_server: Server) -> None:
    client = sdk(jobs_server)
    _, running = submit(client, **UNTIL_CANCELLED)
    _, queued = submit(client, **UNTIL_CANCELLED)  # one job per model in the engine: this one waits its turn
    seen = wait_for(client, running["id"], lambda found: found["progress"]["step"] >= 1)
    assert seen["status"] == "in_progress"

    cancelled = client.delete(f"/images/jobs/{queued['id']}", cast_to=object)
    assert cancelled["status"] == "cancelled" and cancelled["started_at"] is None
    assert cancelled["progress"]["step"] == 0

    stopped = client.delete(f"/images/jobs/{running['id']}", cast_to=object)
    assert stopped["status"] == "cancelled"
    step = stopped["progress"]["step"]  # the steps done when the cancel was answered
    assert seen["progress"]["step"] <= step < stopped["progress"]["steps"]
    deadline = time.monotonic() + 120
    while httpx.get(f"{jobs_server.url}/health/ready").json()["models"]["tiny-sd"]["running"]:
        assert time.monotonic() < deadline, "the cancelled job still holds the model"
        time.sleep(0.05)
    # The model stopped at the next step: the one running when the cancel came is the last.
    log = jobs_server.log_path.read_text()
    assert any(f"stopped tiny-sd after step {last} of 50" in log for last in (step, step + 1)), log[-2000:]
    assert job(client, running["id"]) == stopped  # and it stays as it was answered
    assert job(client, queued["id"])["status"] == "cancelled"
    assert "result" not in stopped


def same_but_ids(error: dict, job_id: str) -> dict:
    """The error with the job's id and the request's id taken out: what could tell them apart."""
    return {**error, "message": error["message"].replace(job_id, "ID"), "request_id": None}


def test_a_key_sees_only_its_own_jobs(jobs_server: Server) -> None:
    mine, theirs = sdk(jobs_server), sdk(jobs_server, OTHER_KEY)
    _, accepted = submit(mine, **SMALL)
    for ask in (lambda c, i: job(c, i), lambda c, i: c.delete(f"/images/jobs/{i}", cast_to=object)):
        with pytest.raises(openai.NotFoundError) as other:
            ask(theirs, accepted["id"])
        with pytest.raises(openai.NotFoundError) as unknown:
            ask(theirs, "imgjob_" + "A" * 22)
        assert same_but_ids(other.value.body, accepted["id"]) == same_but_ids(unknown.value.body, "imgjob_" + "A" * 22)
    assert accepted["id"] not in [each["id"] for each in theirs.get("/images/jobs", cast_to=object)["data"]]
    assert accepted["id"] in [each["id"] for each in mine.get("/images/jobs", cast_to=object)["data"]]
    assert httpx.get(f"{jobs_server.url}/v1/images/jobs/{accepted['id']}").status_code == 401
    assert wait_for(mine, accepted["id"])["status"] == "completed"


def test_unfinished_jobs_past_the_key_limit_are_a_429_with_retry_after(jobs_server: Server) -> None:
    client = sdk(jobs_server, LIMITED_KEY)
    accepted = [submit(client, **LONG)[1] for _ in range(PER_KEY)]
    with pytest.raises(openai.RateLimitError) as caught:
        submit(client, **LONG)
    assert caught.value.body["code"] == "too_many_jobs"
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert float(caught.value.response.headers["retry-after-ms"]) > 0
    for each in accepted:
        client.delete(f"/images/jobs/{each['id']}", cast_to=object)
    assert submit(client, **SMALL)[0].status_code == 202  # room again once they have ended


def test_a_webhook_is_signed_retried_and_verifies(jobs_server: Server) -> None:
    receiver = Receiver(failures=1)
    try:
        client = sdk(jobs_server)
        _, accepted = submit(client, **SMALL, extra_body={"webhook_url": receiver.url, "seed": 5})
        assert accepted["webhook_url"] == receiver.url
        assert receiver.arrived.wait(120), f"no webhook delivered: {receiver.received}"
    finally:
        receiver.close()
    (first_headers, _, first_status), (headers, body, status) = receiver.received
    assert (first_status, status) == (500, 204)
    assert first_headers["webhook-id"] == headers["webhook-id"]  # the same message, tried again
    event = Webhook(SECRET).verify(body, {name.lower(): value for name, value in headers.items()})
    assert event["type"] == "image.job.completed"
    assert event["data"]["id"] == accepted["id"] and event["data"]["status"] == "completed"
    assert event["data"]["result"]["data"][0]["seed"] == 5
    with pytest.raises(WebhookVerificationError):  # signed with another secret: refused
        Webhook("whsec_" + base64.b64encode(b"x" * 24).decode()).verify(body, headers)
    log = jobs_server.log_path.read_text()
    assert f"webhook image.job.completed for job {accepted['id']}, attempt 1 of 5: HTTP 500" in log
    assert f"webhook image.job.completed for job {accepted['id']}, attempt 2 of 5: HTTP 204" in log


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://127.0.0.2:8080/hook", "loopback"),  # 127.0.0.1 is allowed here; the rest of 127/8 is not
        ("http://[::1]/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://intranet.example/hook", "10.1.2.3, a private"),  # a name the DNS server puts on 10.x
        ("file:///etc/passwd", "http or https"),
    ],
)
def test_a_webhook_to_a_private_address_is_a_400(jobs_server: Server, url: str, named: str) -> None:
    client = sdk(jobs_server)
    with pytest.raises(openai.BadRequestError) as caught:
        submit(client, **SMALL, extra_body={"webhook_url": url})
    assert caught.value.body["param"] == "webhook_url"
    assert named in caught.value.body["message"]


def test_without_a_secret_a_webhook_is_a_400_saying_how_to_enable_it(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        submit(client, **SMALL, extra_body={"webhook_url": "https://example.com/hook"})
    assert caught.value.body["param"] == "webhook_url"
    assert "IMAGEGEN_WEBHOOK_SECRET" in caught.value.body["message"]


def test_a_finished_job_expires_with_its_images(make_settings) -> None:
    """The record goes when its images do: a 404 at once past the TTL, gone from the file at the sweep."""
    from fastapi.testclient import TestClient

    from handlers.hosts.local import create_local_app

    settings = make_settings(models=["tiny-sd"], image_ttl_seconds=2)
    with TestClient(create_local_app(settings)) as api:
        body = {"model": "tiny-sd", "prompt": "x", "size": "64x64", "num_inference_steps": 1}
        accepted = api.post("/v1/images/generations", json=body, headers=ASYNC).json()
        deadline = time.monotonic() + 120
        while (found := api.get(f"/v1/images/jobs/{accepted['id']}").json()).get("status") != "completed":
            assert time.monotonic() < deadline, found
            time.sleep(0.05)
        time.sleep(max(0.0, found["expires_at"] - time.time()) + 0.1)
        assert api.get(f"/v1/images/jobs/{accepted['id']}").status_code == 404
        assert api.app.state.services.jobs.sweep() == 1


def test_the_jobs_command_lists_shows_and_cancels(jobs_server: Server) -> None:
    client = sdk(jobs_server)
    _, accepted = submit(client, **UNTIL_CANCELLED)

    def imagegen(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "handlers.hosts.cli", "jobs", "--url", jobs_server.url, *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ})

    listed = imagegen("--key", API_KEY, "list")
    assert listed.returncode == 0 and accepted["id"] in listed.stdout
    shown = imagegen("--key", API_KEY, "show", accepted["id"])
    assert json.loads(shown.stdout)["id"] == accepted["id"]
    cancelled = imagegen("--key", API_KEY, "cancel", accepted["id"])
    assert cancelled.returncode == 0 and f"{accepted['id']}  cancelled" in cancelled.stdout
    theirs = imagegen("--key", OTHER_KEY, "show", accepted["id"])
    assert theirs.returncode == 1 and f"No job with id '{accepted['id']}'" in theirs.stderr
