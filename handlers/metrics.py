"""What an operator's Prometheus scrapes from /metrics (prometheus-client's text format).

Counted as requests end: requests, images, errors, latency and queue wait. Read when scraped:
each model's queue depth, jobs running, state, last load time and batch sizes (from the
engine), and the temp-image store's size. One registry per app, so two apps in one process
(tests, say) never mix their figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from handlers.stores.core import ImageStore
from pipelines.contract.engine import Engine
from pipelines.contract.status import ModelState

_STATES: tuple[ModelState, ...] = ("not_loaded", "loading", "ready", "failed", "remote")
# Image work takes from tens of milliseconds (tiny models) to minutes (big ones on a CPU).
_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class _EngineCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        statuses = self.engine.status()
        depth = GaugeMetricFamily("imagegen_queue_depth", "Jobs waiting for the model here.", labels=["model"])
        running = GaugeMetricFamily(
            "imagegen_in_flight", "Jobs the model is running (remote: calls in flight).", labels=["model"]
        )
        state = GaugeMetricFamily("imagegen_model_state", "1 for the model's current state.", labels=["model", "state"])
        load = GaugeMetricFamily(
            "imagegen_model_load_seconds", "How long the model's last load took.", labels=["model"]
        )
        batches = CounterMetricFamily(
            "imagegen_batches", "Pipeline calls, by the images each held.", labels=["model", "images"]
        )
        for model, status in statuses.items():
            depth.add_metric([model], status.waiting)
            running.add_metric([model], status.running)
            for name in _STATES:
                state.add_metric([model, name], 1.0 if status.state == name else 0.0)
            if status.load_seconds is not None:
                load.add_metric([model], status.load_seconds)
            for images, count in sorted(status.batches.items()):
                batches.add_metric([model, str(images)], count)
        yield from (depth, running, state, load, batches)


class _StoreCollector(Collector):
    def __init__(self, store: ImageStore, max_bytes: int) -> None:
        self.store = store
        self.max_bytes = max_bytes

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stored_bytes, files = self.store.usage()
        yield GaugeMetricFamily("imagegen_store_bytes", "Bytes of live temp images behind URLs.", value=stored_bytes)
        yield GaugeMetricFamily("imagegen_store_files", "Temp images behind URLs.", value=files)
        yield GaugeMetricFamily(
            "imagegen_store_max_bytes", "The store's quota (IMAGEGEN_STORAGE_MAX_BYTES).", value=self.max_bytes
        )


class Telemetry:
    """The app's metrics: a registry, and what each finished request adds to it."""

    def __init__(self, engine: Engine, store: ImageStore, max_bytes: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "imagegen_requests", "Requests answered.", ["route", "model", "task", "status"], registry=self.registry
        )
        self.images = Counter("imagegen_images", "Images made and answered.", ["model", "task"], registry=self.registry)
        self.errors = Counter("imagegen_errors", "Errors answered, by code.", ["code"], registry=self.registry)
        self.latency = Histogram(
            "imagegen_request_seconds",
            "From the request's arrival to its last byte.",
            ["route", "model"],
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "imagegen_queue_wait_seconds",
            "How long jobs waited for their model.",
            ["model"],
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.registry.register(_EngineCollector(engine))
        self.registry.register(_StoreCollector(store, max_bytes))

    def observe(self, route: str, fields: dict[str, Any]) -> None:
        """A request ended; `fields` are its log line's."""
        model, task = fields["model"] or "", fields["task"] or ""
        self.requests.labels(route, model, task, str(fields["status"])).inc()
        self.latency.labels(route, model).observe(fields["total_s"])
        if fields["error"]:
            self.errors.labels(fields["error"]).inc()
        elif fields["status"] == 200 and fields["n"]:
            self.images.labels(model, task).inc(fields["n"])
        if fields["queue_s"] is not None:
            self.queue_wait.labels(model).observe(fields["queue_s"])
