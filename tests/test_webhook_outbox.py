"""No lost webhooks: a job's end is owed to its `webhook_url` from the write that ends it until
it is delivered, across a `kill -9` and a graceful stop, and it arrives once, under the same
`webhook-id` as every attempt before (a real server process, a real receiver, the
`standardwebhooks` package)."""

from __future__ import annotations

import base64
import secrets
import time
from pathlib import Path

import pytest
from openai import OpenAI
from standardwebhooks.webhooks import Webhook

from tests.conftest import API_KEY, start_server, stop_server
from tests.job_helpers import SMALL, Receiver, job, submit, wait_for, with_pixels

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def attempts_seen(receiver: Receiver, more_than: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.received) <= more_than:
        assert time.monotonic() < deadline, f"no webhook attempt after {timeout} s: {receiver.received}"
        time.sleep(0.05)


def test_a_webhook_owed_when_the_server_dies_is_delivered_after_the_restart(
    cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    storage = tmp_path_factory.mktemp("outbox-images")
    logs = tmp_path_factory.mktemp("outbox-log")
    env = {
        "IMAGEGEN_CACHE_DIR": str(cache_dir),
        "IMAGEGEN_STORAGE_DIR": str(storage),
        "IMAGEGEN_API_KEYS": API_KEY,
        "IMAGEGEN_MODELS": "tiny-sd",
        "IMAGEGEN_WEBHOOK_SECRET": SECRET,
        "IMAGEGEN_WEBHOOK_HOSTS": "127.0.0.1",
        "IMAGEGEN_WEBHOOK_ATTEMPTS": "100",  # still retrying when the server goes
        "IMAGEGEN_WEBHOOK_BACKOFF_SECONDS": "0.2",
    }
    receiver = Receiver(failures=10**9)  # refuses (500) until told otherwise
    try:
        # 1. The job completes; its webhook is refused; the server is killed while it retries.
        process, url = start_server(env, logs / "killed.log")
        try:
            client = OpenAI(api_key=API_KEY, base_url=f"{url}/v1", max_retries=0, timeout=120)
            body = {**SMALL, "n": 2, "extra_body": {"seed": 21, "num_inference_steps": 2, "webhook_url": receiver.url}}
            accepted = submit(client, **body)[1]
            assert wait_for(client, accepted["id"])["status"] == "completed"
            attempts_seen(receiver, more_than=1)
            client.close()
        finally:
            process.kill()  # SIGKILL: no shutdown, no last writes
            process.wait()
        assert len(list(storage.glob("*.json"))) == 1  # the result, apart from its record

        # 2. Started again, still refused, then stopped gracefully: the webhook is not dropped.
        before = len(receiver.received)
        process, url = start_server(env, logs / "stopped.log")
        try:
            attempts_seen(receiver, more_than=before)  # the owed webhook is sent again at start
        finally:
            stop_server(process)
        assert f"webhook for job {accepted['id']} still owed" in (logs / "stopped.log").read_text()

        # 3. Started again with the receiver up: it gets the message once.
        receiver.failures = 0
        process, url = start_server(env, logs / "delivered.log")
        try:
            client = OpenAI(api_key=API_KEY, base_url=f"{url}/v1", max_retries=0, timeout=120)
            assert receiver.arrived.wait(120), f"no webhook delivered: {receiver.received[-3:]}"
            shown = job(client, accepted["id"])
            client.close()
        finally:
            stop_server(process)

        # 4. Delivered, it is owed no more: the next start sends nothing.
        stop_server(start_server(env, logs / "after.log")[0])  # a resend would be tried, and in, by then
    finally:
        receiver.close()

    refused = [headers for headers, _, status in receiver.received if status == 500]
    delivered = [(headers, body) for headers, body, status in receiver.received if status == 204]
    assert len(refused) >= 3 and len(delivered) == 1
    headers, body = delivered[0]
    assert {each["webhook-id"] for each in refused} == {headers["webhook-id"]}  # one message, all along
    event = Webhook(SECRET).verify(body, {name.lower(): value for name, value in headers.items()})
    assert event["type"] == "image.job.completed"
    assert event["data"]["id"] == accepted["id"]
    # The body carries the job as the API shows it, its result (two base64 images) whole.
    assert shown["status"] == "completed" and len(shown["result"]["data"]) == 2
    assert with_pixels(event["data"]["result"]) == with_pixels(shown["result"])
    assert event["data"] == shown
