"""The Volume-backed temp-image store, on temp directories standing in for each container's mount.

The only fake is the Volume API (`VolumeFiles`): `SharedVolume` keeps the committed state that
`commit()` publishes and `read()` serves, as Modal does; each container's mount is a real folder.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from handlers.hosts.modal.volume import VolumeImageStore
from handlers.http_errors import http_headers, http_status
from handlers.stores.core import stamped_id
from pipelines.contract.errors import APIError


class SharedVolume:
    """The committed state of one Volume, shared by every container that mounts it."""

    def __init__(self) -> None:
        self.committed: dict[str, bytes] = {}
        self.commits = 0
        self.reads: list[str] = []
        self.lock = threading.Lock()

    def mount(self, root: Path) -> Mount:
        return Mount(self, root)


class Mount:
    """One container's view: commit publishes its folder's changes; read sees only what is committed."""

    def __init__(self, volume: SharedVolume, root: Path, commit_seconds: float = 0.0) -> None:
        self.volume = volume
        self.root = root
        self.commit_seconds = commit_seconds
        self.seen: set[str] = set()
        self.fail = False
        self.in_flight = self.most_in_flight = 0

    def commit(self) -> None:
        if self.fail:
            raise ConnectionError("Modal is unreachable")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self._commit()
        finally:
            self.in_flight -= 1

    def _commit(self) -> None:
        present = {}
        for path in self.root.iterdir():
            try:
                present[path.name] = path.read_bytes()
            except FileNotFoundError:  # renamed by a put in another thread meanwhile
                continue
        time.sleep(self.commit_seconds)
        with self.volume.lock:
            for name in self.seen - present.keys():
                self.volume.committed.pop(name, None)
            self.volume.committed.update(present)
            self.seen |= present.keys()
            self.volume.commits += 1

    def read(self, path: str) -> bytes | None:
        if self.fail:
            raise ConnectionError("Modal is unreachable")
        self.volume.reads.append(path)
        return self.volume.committed.get(path)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def volume() -> SharedVolume:
    return SharedVolume()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def container(volume: SharedVolume, root: Path, clock: Clock, ttl: int = 3600) -> VolumeImageStore:
    root.mkdir(exist_ok=True)
    return VolumeImageStore(root, ttl, volume.mount(root), clock=clock)


def stored(store: VolumeImageStore, data: bytes, format: str) -> str:
    """What a response does: put the image, then publish before naming its URL."""
    image_id = store.put(data, format)
    asyncio.run(store.publish())
    return image_id


def test_a_put_is_committed_once_published_and_read_from_the_mount(volume, clock, tmp_path: Path) -> None:
    store = container(volume, tmp_path / "a", clock)
    image_id = store.put(b"png bytes", "png")
    assert image_id.endswith(".png") and image_id not in volume.committed  # not yet shared
    asyncio.run(store.publish())
    assert volume.committed[image_id] == b"png bytes"
    assert store.get(image_id) == b"png bytes"
    assert volume.reads == []  # its own image came from its mount, no API call


def test_another_container_reads_it_through_the_volume_api(volume, clock, tmp_path: Path) -> None:
    writer = container(volume, tmp_path / "a", clock)
    reader = container(volume, tmp_path / "b", clock)
    image_id = stored(writer, b"from a", "webp")
    assert not (tmp_path / "b" / image_id).exists()  # b's mount is as it was at b's start
    assert reader.get(image_id) == b"from a"
    assert volume.reads == [image_id]
    assert reader.get(stamped_id("png", clock())) is None  # unknown: a miss on both paths


def test_expiry_is_enforced_on_both_read_paths(volume, clock, tmp_path: Path) -> None:
    writer = container(volume, tmp_path / "a", clock, ttl=60)
    reader = container(volume, tmp_path / "b", clock, ttl=60)
    image_id = stored(writer, b"x", "png")
    clock.now += 59
    assert writer.get(image_id) == b"x" and reader.get(image_id) == b"x"
    clock.now += 2
    reads = len(volume.reads)
    assert writer.get(image_id) is None and reader.get(image_id) is None
    assert len(volume.reads) == reads  # expired ids never cost an API call


@pytest.mark.parametrize(
    "image_id",
    [
        "../../etc/passwd",
        "x" * 22 + ".png",
        "AAAAAAAAAAAAAAAAAAAAAA.png",
        "zzzzzzzzz" + "A" * 22 + ".png",
        "fffffffff" + "A" * 22 + ".png",
    ],
)
def test_malformed_or_forged_ids_never_reach_the_volume(volume, clock, tmp_path: Path, image_id: str) -> None:
    store = container(volume, tmp_path / "a", clock)
    assert store.get(image_id) is None
    assert volume.reads == []


def test_the_sweep_deletes_expired_images_and_commits_the_deletions(volume, clock, tmp_path: Path) -> None:
    store = container(volume, tmp_path / "a", clock, ttl=60)
    old = stored(store, b"old", "png")
    clock.now += 50
    new = stored(store, b"new", "png")
    clock.now += 20
    commits = volume.commits
    assert store.sweep() == 1
    assert volume.commits == commits + 1
    assert old not in volume.committed and volume.committed[new] == b"new"
    assert store.sweep() == 0 and volume.commits == commits + 1  # nothing removed, nothing committed


def test_a_burst_of_responses_shares_commits_one_at_a_time_and_each_returns_committed(
    volume, clock, tmp_path: Path
) -> None:
    root = tmp_path / "a"
    root.mkdir()
    mount = Mount(volume, root, commit_seconds=0.05)
    store = VolumeImageStore(root, 3600, mount, clock=clock)
    committed_on_return: list[bool] = []

    async def respond(index: int) -> None:
        ids = [await asyncio.to_thread(store.put, f"image {index}.{n}".encode(), "png") for n in range(2)]
        await store.publish()
        committed_on_return.append(all(image_id in volume.committed for image_id in ids))

    async def burst() -> None:
        await asyncio.gather(*(respond(index) for index in range(16)))

    asyncio.run(burst())
    assert committed_on_return == [True] * 16  # no URL is named before every container can read it
    assert volume.commits < 16 and mount.most_in_flight == 1  # shared, and never two at once


def test_an_unreachable_volume_api_is_a_retryable_503(volume, clock, tmp_path: Path) -> None:
    root = tmp_path / "a"
    root.mkdir()
    mount = Mount(volume, root)
    store = VolumeImageStore(root, 3600, mount, clock=clock)
    mount.fail = True
    with pytest.raises(APIError) as put_failed:
        stored(store, b"x", "png")
    with pytest.raises(APIError) as read_failed:
        store.get(stamped_id("png", clock()))
    for caught in (put_failed, read_failed):
        assert http_status(caught.value) == 503 and http_headers(caught.value)["x-should-retry"] == "true"
