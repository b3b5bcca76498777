"""Retry-After before anything is measured, and spread so refused clients do not return together."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from pipelines.pace import RETRY_FLOOR_SECONDS, Pace, prior_for, work
from tests.conftest import start_server, stop_server
from tests.test_load import LONG, SMALL, _post_in_background, _wait_until_queued


def test_before_any_batch_is_measured_the_wait_is_read_off_the_devices_prior() -> None:
    big = work(1, 1024, 1024, 40)
    pace = Pace(prior_for("cpu"))
    assert pace.until_done(big, 0.0) == pytest.approx(prior_for("cpu") * big)
    assert pace.until_done(big, 0.0) > 10 * RETRY_FLOOR_SECONDS
    assert pace.until_done(work(1, 64, 64, 1), 0.0) == RETRY_FLOOR_SECONDS  # tiny work: the floor
    assert prior_for("cuda:1") < prior_for("mps") < prior_for("cpu")
    pace.ran(big, 2.0)  # once measured, the measure wins
    assert pace.until_done(big, 0.5) == pytest.approx(1.5)


def test_clients_refused_together_are_told_waits_spread_over_the_queue_ahead() -> None:
    pace = Pace()
    job = work(1, 512, 512, 20)
    pace.ran(job, 2.0)
    told = [pace.retry_after(job, 1.0, [job] * 3) for _ in range(50)]
    # The running job ends in 1 s; the three waiting behind it take 6 s more.
    assert all(1.0 <= each <= 7.0 for each in told)
    assert len({round(each, 2) for each in told}) > 25
    assert max(told) - min(told) > 2.0
    # Jobs that will share a pipeline call pay its fixed part once: eight waiting small jobs in
    # batches of eight take one call's time, not eight.
    small = work(1, 64, 64, 2)
    pace = Pace()
    pace.ran(small, 1.0)  # one alone: mostly fixed cost
    pace.ran(8 * small, 1.2)  # eight together: barely longer
    batched = max(pace.retry_after(0.0, 0.0, [small] * 8, batch_jobs=8) for _ in range(50))
    alone = max(pace.retry_after(0.0, 0.0, [small] * 8, batch_jobs=1) for _ in range(50))
    one_call = pace.until_done(0.0, 0.0) + pace.seconds(8 * small)
    assert batched <= one_call < alone


def test_the_first_burst_is_not_told_the_floor(cache_dir: Path, tmp_path: Path) -> None:
    env = {
        "IMAGEGEN_CACHE_DIR": str(cache_dir),
        "IMAGEGEN_STORAGE_DIR": str(tmp_path / "images"),
        "IMAGEGEN_MODELS": "tiny-sd",
        "IMAGEGEN_PRELOAD": "true",
        "IMAGEGEN_MAX_QUEUE": "1",
    }
    process, url = start_server(env, tmp_path / "server.log")
    try:
        while httpx.get(f"{url}/health/ready", timeout=30).json()["models"]["tiny-sd"]["state"] != "ready":
            threading.Event().wait(0.1)
        answers: list = []
        # Nothing has run yet: the first job (long) runs, the next waits, the third is refused.
        threads = [_post_in_background(url, LONG, answers, timeout=5)]
        _wait_until_queued(url, running=1, waiting=0)
        threads.append(_post_in_background(url, SMALL, answers, timeout=5))
        _wait_until_queued(url, running=1, waiting=1)
        refused = httpx.post(f"{url}/v1/images/generations", json=SMALL, timeout=30)
        assert refused.status_code == 429
        # 1024x1024 x 40 steps on a CPU: well past the half-second floor.
        assert int(refused.headers["retry-after-ms"]) > 10_000
        for thread in threads:
            thread.join()  # they hang up after 5 s: the long job stops at its next step
    finally:
        stop_server(process)
