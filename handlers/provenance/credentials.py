"""Content credentials on encoded images: a C2PA manifest, signed, embedded (c2pa-python).

What it says: the image was made (`c2pa.created`) or edited from the uploaded image (`c2pa.opened`
of it as the parent ingredient, then `c2pa.edited`; variations too) by a trained model (IPTC's
digital source type `trainedAlgorithmicMedia`), which model (the software agent), and when.
"""

from __future__ import annotations

import datetime
import io
import logging
import threading
from pathlib import Path
from typing import Any

import c2pa
from PIL import Image

from handlers.provenance.identity import SigningIdentity, local_identity, operator_identity, shared_identity
from pipelines.contract.job import Job

log = logging.getLogger("imagegen")

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}}  # a thumbnail would double a small image


class ContentCredentials:
    """Signs images with one identity. Thread-safe (one signature at a time: the native signer is shared)."""

    def __init__(self, identity: SigningIdentity, version: str = "0.1.0") -> None:
        self.identity = identity
        self.version = version
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(identity.alg, identity.chain, identity.key, None))
        self._context = c2pa.Context(settings=c2pa.Settings.from_dict(_SETTINGS), signer=signer)
        self._lock = threading.Lock()

    @classmethod
    def configured(
        cls, enabled: bool, cert: str | None, key: str | None, cache_dir: Path, shared: Any = None
    ) -> ContentCredentials | None:
        """The operator's identity when both cert and key are given, else the local one: kept in
        `shared` (a store all of a deployment's containers see, e.g. a modal.Dict) when given, else in
        the cache dir. None when off."""
        if not enabled:
            log.info("content credentials are off (IMAGEGEN_C2PA=off): images carry no C2PA manifest")
            return None
        if bool(cert) != bool(key):
            raise ValueError("IMAGEGEN_C2PA_CERT and IMAGEGEN_C2PA_KEY go together: set both, or neither")
        if cert and key:
            return cls(operator_identity(cert, key))
        if shared is not None:
            credentials, kept = cls(shared_identity(shared)), "shared by this deployment's containers"
        else:
            folder = Path(cache_dir) / "c2pa"
            credentials, kept = cls(local_identity(folder)), f"in {folder}"
        log.warning(
            "content credentials are SELF-SIGNED (a local identity %s): C2PA readers find them valid but "
            "untrusted. Set IMAGEGEN_C2PA_CERT and IMAGEGEN_C2PA_KEY to sign as your organisation.",
            kept,
        )
        return credentials

    def _manifest(self, job: Job, output_format: str) -> dict:
        when = datetime.datetime.now(datetime.UTC).isoformat()
        made = {
            "action": "c2pa.created" if job.task == "generate" else "c2pa.edited",
            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
            "softwareAgent": {"name": job.model},
            "when": when,
        }
        actions = (
            [made]
            if job.task == "generate"
            else [{"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}}, made]
        )
        return {
            "claim_generator_info": [{"name": "imagegen", "version": self.version}],
            "title": f"image.{'jpg' if output_format == 'jpeg' else output_format}",
            "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}],
        }

    def sign(self, data: bytes, job: Job) -> bytes:
        """`data` (encoded in `job.output_format`) with the manifest embedded; pixels and other chunks kept."""
        mime = MIME[job.output_format]
        signed = io.BytesIO()
        with self._lock:
            builder = c2pa.Builder(self._manifest(job, job.output_format), context=self._context)
            if job.task != "generate" and job.images:  # what it was edited from
                parent = job.images[0]
                parent_mime = Image.MIME.get(Image.open(io.BytesIO(parent)).format or "", "image/png")
                builder.add_ingredient(
                    {"title": "input", "relationship": "parentOf", "label": "parent"}, parent_mime, io.BytesIO(parent)
                )
            builder.sign(mime, io.BytesIO(data), signed)
        return signed.getvalue()


def with_credentials(credentials: ContentCredentials | None, images: list[bytes], job: Job) -> list[bytes]:
    """The job's final images, signed (unchanged when content credentials are off)."""
    return images if credentials is None else [credentials.sign(data, job) for data in images]
