"""What the async-job tests share: submitting through the official SDK, polling, and the local
listeners a webhook test needs (an HTTP receiver, a DNS server that answers a private address)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dns.message
import dns.rdatatype
import dns.rrset
from openai import OpenAI

from tests.conftest import png

ASYNC = {"Prefer": "respond-async"}
TERMINAL = {"completed", "failed", "cancelled"}
# Long enough to be seen running and cancelled by its steps on a busy CPU, short enough to finish.
LONG = {"model": "tiny-sd", "prompt": "a long job", "size": "256x256", "extra_body": {"num_inference_steps": 50}}
# A job long enough to be cancelled while it runs (many seconds on an idle CPU: the tiny models
# take at most 50 steps, so it is bigger), also after a few slow commands.
UNTIL_CANCELLED = {**LONG, "size": "512x512", "n": 2}
SMALL = {"model": "tiny-sd", "prompt": "a lighthouse", "size": "64x64", "response_format": "b64_json"}


def with_pixels(body: dict[str, Any]) -> dict[str, Any]:
    """An images body with each inline image as its decoded pixels: two signings of the same image
    differ in their content credentials (when each was signed), never in a pixel."""
    data = [
        {**item, "b64_json": png(base64.b64decode(item["b64_json"])).tobytes()} if "b64_json" in item else item
        for item in body["data"]
    ]
    return {**body, "data": data}


def submit(client: OpenAI, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """(the raw 202, the job it answered) for a generation sent with `Prefer: respond-async`."""
    raw = client.images.with_raw_response.generate(extra_headers=ASYNC, **kwargs)
    return raw, json.loads(raw.text)


def job(client: OpenAI, job_id: str) -> dict[str, Any]:
    return client.get(f"/images/jobs/{job_id}", cast_to=object)


def ended(found: dict[str, Any]) -> bool:
    return found["status"] in TERMINAL


def wait_for(client: OpenAI, job_id: str, until: Any = ended, timeout: float = 300) -> dict[str, Any]:
    """The job once `until(job)` holds (default: it has ended), polling what the server says."""
    deadline = time.monotonic() + timeout
    while not until(found := job(client, job_id)):
        assert time.monotonic() < deadline, f"job {job_id} still {found['status']} after {timeout} s: {found}"
        time.sleep(0.05)
    return found


@dataclass
class Receiver:
    """A local webhook receiver: answers `failures` 500s first, then 204s; keeps what it got."""

    failures: int = 1
    received: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                status = 500 if len(receiver.received) < receiver.failures else 204
                receiver.received.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
                if status == 204:
                    receiver.arrived.set()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/images"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PrivateDNS:
    """A DNS server on 127.0.0.1 that answers every A question with `address` (a 10.x one), so
    a name that resolves to a private address needs no internet and no /etc/hosts entry."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.nameserver = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            if question.rdtype == dns.rdatatype.A:
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", self.address))
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self.sock.close()
