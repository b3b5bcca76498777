"""How big the job database grows: 10,000 jobs written as the server writes them, then swept.

    python scripts/jobs_db_size.py --jobs 10000

Each job is written queued (with its resolved request, as the 202 needs), then in progress, then
completed with a URL result (its request dropped, as the server does); `--b64` puts a 64x64
PNG in each result instead, which the server keeps apart from the record, as a blob beside the
images (handlers/jobs/results.py). Prints the file's size and the bytes per job (and the blobs'),
then again after every record has expired and been swept.
"""

from __future__ import annotations

import argparse
import base64
import io
import tempfile
import time
from pathlib import Path

from PIL import Image

from handlers.images.schemas import ImageGenerationRequest
from handlers.jobs.records import JobRecord, end, new_job_id
from handlers.jobs.results import ResultsApart
from handlers.jobs.store import SQLiteJobStore
from handlers.jobs.work import Work
from handlers.stores.folder import LocalImageStore
from pipelines.contract.job import Job


def _size(path: Path) -> int:
    return sum(each.stat().st_size for each in path.parent.glob(path.name + "*"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--b64", action="store_true", help="results carry a 64x64 PNG inline (b64_json)")
    args = parser.parse_args(argv)
    png = io.BytesIO()
    Image.effect_noise((64, 64), 64).convert("RGB").save(png, format="PNG")
    inline = base64.b64encode(png.getvalue()).decode()
    request = ImageGenerationRequest(model="sdxl-turbo", prompt="a lighthouse on a cliff at dusk, oil painting")
    job = Job("generate", "sdxl-turbo", request.prompt, 1, 1024, 1024, 1024, 1024, 4, 0.0, (1234,))
    payload = Work(job, request, "https://images.example.com").dump()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "jobs.sqlite3"
        images = LocalImageStore(Path(folder) / "images", 3600)
        store = ResultsApart(SQLiteJobStore(path), images)
        began = time.perf_counter()
        for index in range(args.jobs):
            record = JobRecord(new_job_id(), f"owner{index % 7}", "generations", job.model, 4, 1, payload=payload)
            store.put(record)
            record.status, record.step = "in_progress", 2
            store.put(record)
            image = {"b64_json": inline} if args.b64 else {"url": f"https://images.example.com/v1/temp-images/{index}"}
            result = {"created": 0, "data": [{**image, "revised_prompt": request.prompt, "seed": 1234}]}
            end(record, "completed", 3600, result=result)
            store.put(record)
        seconds = time.perf_counter() - began
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        full = _size(path)
        print(
            f"{args.jobs} jobs ({'b64_json' if args.b64 else 'url'} results): {full / 2**20:.2f} MiB, "
            f"{full / args.jobs:.0f} bytes a job; {3 * args.jobs / seconds:.0f} writes/s; "
            f"results apart: {images.usage()[1]} files, {images.usage()[0] / 2**20:.2f} MiB"
        )
        swept = store.sweep(now=time.time() + 3601)
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        print(
            f"after the sweep ({swept} expired): {_size(path) / 2**20:.2f} MiB on disk, "
            f"its pages reused by the next jobs ({len(store.unfinished())} unfinished left)"
        )
        store.close()


if __name__ == "__main__":
    main()
