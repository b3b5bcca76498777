"""How long a model's jobs take, learned from its recent batches: for Retry-After and the shutdown drain.

A job's work is its pixels times its steps (times its images); a batch takes a fixed part (text
encoding, the decode, the PNG) plus a part that grows with its work. Both are fitted to the
recent batches (decayed, so the estimate follows a change of load), so a queue of 64x64 jobs
says nothing false about a 1024x1024 one that follows: its time is read off the same line.

Before the first batch has finished nothing is measured, and the first burst would all be told
the floor and come back together to a queue still full: until then Retry-After reads the work
off a prior for the device (seconds per megapixel-step). And the clients refused at one moment
are told different waits, spread over the time the queue ahead of them takes, so they return
as places free rather than all at once.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

# The shortest wait a busy answer asks for: a slot may free sooner, but not much sooner than a
# retry can travel, and a client told 0 would just spin.
RETRY_FLOOR_SECONDS = 0.5
# How fast the estimate follows the latest batches: each new one weighs as much as all before.
DECAY = 0.5


# Roughly what a diffusion model of SD's size takes per megapixel-step on each device; only a
# prior, read until the model's own batches are measured (a smaller model is faster: a longer
# first wait, never a stampede).
PRIOR_SECONDS_PER_MEGAPIXEL_STEP = {"cuda": 0.1, "mps": 1.0, "cpu": 5.0}


def prior_for(device: str) -> float:
    """Seconds per unit of work (a pixel-step) before anything is measured on `device`."""
    kind = device.split(":")[0]
    return PRIOR_SECONDS_PER_MEGAPIXEL_STEP.get(kind, PRIOR_SECONDS_PER_MEGAPIXEL_STEP["cpu"]) / 1e6


def work(n: int, width: int, height: int, steps: int) -> float:
    """A job's work: pixels x steps x images."""
    return float(max(1, n) * width * height * max(1, steps))


class Pace:
    """seconds = fixed + per_work * work, fitted (least squares, decayed) to the batches seen."""

    def __init__(self, prior_per_work: float | None = None) -> None:
        self._sums = [0.0] * 5  # weight, sum w, sum w^2, sum s, sum w*s
        self.prior_per_work = prior_per_work

    def ran(self, batch_work: float, seconds: float) -> None:
        keep = 1 - DECAY if self._sums[0] else 1.0
        for i, add in enumerate((1.0, batch_work, batch_work**2, seconds, batch_work * seconds)):
            self._sums[i] = keep * self._sums[i] + add

    @property
    def known(self) -> bool:
        return self._sums[0] > 0

    def seconds(self, batch_work: float) -> float | None:
        """A batch of this much work, in seconds; None before any batch has run."""
        weight, sum_w, sum_ww, sum_s, sum_ws = self._sums
        if not weight:
            return None
        mean_w, mean_s = sum_w / weight, sum_s / weight
        spread = sum_ww / weight - mean_w**2
        if spread > 1e-6 * mean_w**2:  # batches of different sizes: a line through them
            per_work = max(0.0, (sum_ws / weight - mean_w * mean_s) / spread)
            fixed = mean_s - per_work * mean_w
            if fixed >= 0:
                return fixed + per_work * batch_work
        # One size seen (or a line that would start below zero): proportional to the work.
        return mean_s * batch_work / mean_w if mean_w else mean_s

    def guess(self, batch_work: float) -> float | None:
        """`seconds`, or before any batch has run the prior's reading (None without a prior)."""
        total = self.seconds(batch_work)
        if total is None and self.prior_per_work is not None:
            total = self.prior_per_work * batch_work
        return total

    def until_done(self, batch_work: float, elapsed: float) -> float:
        """Seconds left of a running batch, never under the retry floor (the floor when unknown)."""
        total = self.guess(batch_work)
        return RETRY_FLOOR_SECONDS if total is None else max(RETRY_FLOOR_SECONDS, total - elapsed)

    def retry_after(self, batch_work: float, elapsed: float, waiting: Iterable[float], batch_jobs: int = 1) -> float:
        """When a refused client should come back: once the running batch ends, plus a random
        share of the time the jobs waiting behind it take (in batches of up to `batch_jobs`,
        each paying the fixed part once), so refused clients spread out."""
        works = list(waiting)
        step = max(1, batch_jobs)
        batches = (sum(works[start : start + step]) for start in range(0, len(works), step))
        behind = sum(self.guess(each) or 0.0 for each in batches)
        return self.until_done(batch_work, elapsed) + random.uniform(0.0, behind)

    def fitting(self, works: Iterable[float], seconds: float) -> int:
        """How many of these jobs, run one after another in order, end within `seconds`."""
        if not self.known:
            return 0  # no pace known yet: nothing can be promised
        count = 0
        for each in works:
            seconds -= self.seconds(each) or 0.0
            if seconds < 0:
                break
            count += 1
        return count
