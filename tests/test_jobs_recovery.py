"""Nothing accepted is lost: a server killed with SIGKILL while jobs wait and run, started again on
the same storage, runs each of them again (the seeds make the same images), or fails it with
the reason it cannot."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai import OpenAI

from tests.conftest import API_KEY, start_server, stop_server
from tests.job_helpers import LONG, SMALL, submit, wait_for, with_pixels


def test_jobs_survive_kill_9_and_each_ends_completed_or_failed_with_a_reason(
    cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    storage = tmp_path_factory.mktemp("recovery-images")
    logs = tmp_path_factory.mktemp("recovery-log")
    env = {
        "IMAGEGEN_CACHE_DIR": str(cache_dir),
        "IMAGEGEN_STORAGE_DIR": str(storage),
        "IMAGEGEN_API_KEYS": API_KEY,
        "IMAGEGEN_MODELS": "tiny-sd,tiny-flux",
        "IMAGEGEN_JOBS_IN_ENGINE": "1",
    }
    process, url = start_server(env, logs / "before.log")
    try:
        client = OpenAI(api_key=API_KEY, base_url=f"{url}/v1", max_retries=0, timeout=120)
        running = submit(client, **LONG)[1]
        waiting = submit(client, **SMALL, extra_body={"seed": 11, "num_inference_steps": 2})[1]
        orphans = [
            submit(client, **{**LONG, "model": "tiny-flux"})[1],
            submit(client, **{**SMALL, "model": "tiny-flux"})[1],
        ]
        wait_for(client, running["id"], lambda found: found["status"] == "in_progress")
        assert wait_for(client, waiting["id"], lambda found: True)["status"] == "queued"
        client.close()
    finally:
        process.kill()  # SIGKILL: no shutdown, no last writes
        process.wait()

    # Started again without tiny-flux: its jobs cannot run here any more.
    process, url = start_server({**env, "IMAGEGEN_MODELS": "tiny-sd"}, logs / "after.log")
    try:
        client = OpenAI(api_key=API_KEY, base_url=f"{url}/v1", max_retries=0, timeout=120)
        for accepted in (running, waiting):
            assert wait_for(client, accepted["id"])["status"] == "completed"
        for accepted in orphans:
            failed = wait_for(client, accepted["id"])
            assert failed["status"] == "failed"
            assert failed["error"]["code"] == "job_lost"
            assert "tiny-flux is no longer served" in failed["error"]["message"]
        again = client.images.generate(**SMALL, extra_body={"seed": 11, "num_inference_steps": 2})
        result = wait_for(client, waiting["id"])["result"]
        assert with_pixels(result)["data"] == with_pixels(again.model_dump(exclude_none=True))["data"]  # the same image
        client.close()
    finally:
        stop_server(process)
