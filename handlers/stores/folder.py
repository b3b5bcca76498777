"""LocalImageStore: temp images in a local folder (`imagegen serve`)."""

from __future__ import annotations

import logging

from handlers.stores.core import ImageFolder
from pipelines.contract.errors import storage_unavailable

log = logging.getLogger("imagegen")


class LocalImageStore(ImageFolder):
    """An ImageStore in one local folder; a failing disk is a 503, never a URL that 404s."""

    def put(self, data: bytes, format: str) -> str:
        """The new image's id; a 503 when it does not fit the quota or the disk refuses it."""
        try:
            return self.write(data, format)
        except OSError as exc:
            log.error("storing a temp image in %s failed: %s", self.root, exc)
            raise storage_unavailable(exc.strerror or type(exc).__name__) from None

    def get(self, image_id: str) -> bytes | None:
        path = self.root / image_id
        if not self.live(image_id):
            if self.created(image_id) is not None:  # expired: its file goes now, before any sweep
                self.delete(path)
            return None
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            log.error("reading temp image %s failed: %s", image_id, exc)
            raise storage_unavailable(exc.strerror or type(exc).__name__, reading=True) from None
