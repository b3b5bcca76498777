"""What an operator's Prometheus scrapes from /metrics (prometheus-client's text format)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from handlers.stores.core import ImageStore


class StoreCollector(Collector):
    """The temp-image store's size, read when scraped."""

    def __init__(self, store: ImageStore, max_bytes: int) -> None:
        self.store = store
        self.max_bytes = max_bytes

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stored_bytes, files = self.store.usage()
        yield GaugeMetricFamily("imagegen_store_bytes", "Bytes of live temp images behind URLs.", value=stored_bytes)
        yield GaugeMetricFamily("imagegen_store_files", "Temp images behind URLs.", value=files)
        yield GaugeMetricFamily("imagegen_store_max_bytes", "The store's quota (IMAGEGEN_STORAGE_MAX_BYTES).",
                                value=self.max_bytes)


def metrics_registry(store: ImageStore, max_bytes: int) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(StoreCollector(store, max_bytes))
    return registry
