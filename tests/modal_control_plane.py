"""Modal's control plane, faked at its boundary for the tests, doing what modal 1.6.4's source does.

What is real: the user class (ours, or a scripted stand-in), its enter/exit hooks and async
methods, found on the instance as modal's container finds them (`_find_callables_for_obj`), and
`modal.current_function_call_id()` inside them. What is faked is the trip through Modal:

- A `Container` runs one instance's hooks (pre-snapshot enter, then post-snapshot enter) and its
  inputs, each an asyncio task on the container's own event loop (`UserCodeEventLoop`), with the
  input's ids set as `_container_io_manager` sets them.
- `spawn` starts an input and returns a `FunctionCall` at once; `get` waits for its output;
  `cancel` cancels the input's task, as `make_async_cancel_callback` does for async methods
  under `@modal.concurrent` (`_container_entrypoint.py`).
- `remote_gen` starts a generator input whose outputs the container pushes whether or not
  anyone reads them (Modal holds them; `_Invocation.run_generator` reads them): closing the
  caller's iterator, or the caller's event loop ending, stops the reading only, and the generator
  runs on. Only a `FunctionCall.cancel()` (found with `from_id`) stops it.
- Arguments, results and exceptions cross by pickling; an exception that cannot be unpickled
  arrives as `ExecutionError`, as Modal's client raises it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import itertools
import random
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from typing import Any

from modal._partial_function import _find_callables_for_obj, _PartialFunctionFlags
from modal._runtime.execution_context import _set_current_context_ids
from modal._serialization import deserialize, pickle_exception, serialize
from modal.exception import ExecutionError

_ids = itertools.count(1)
_END = object()


def across(value: Any) -> Any:
    """A value after a trip over Modal's wire: Modal's own serializer there, its deserializer here."""
    return deserialize(serialize(value), None)


def received(exc: BaseException) -> BaseException:
    """A remote exception as Modal's client raises it: pickled by the container as
    `pickle_exception` does, unpickled here, or ExecutionError if it cannot be."""
    try:
        return deserialize(pickle_exception(exc), None)
    except Exception as failure:
        return ExecutionError(f"Could not deserialize remote exception due to local error:\n{failure}")


class Container:
    """One container of a class: its event loop in a thread, its instance entered once.

    `booted`, if given, holds the enter hooks back until it is set: a cold start (the image pulled,
    a snapshot restored) that a test lets finish when it chooses."""

    def __init__(self, instance: Any, booted: threading.Event | None = None) -> None:
        self.instance = instance
        self.booted = booted
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-modal-container", daemon=True)
        self.thread.start()
        self.entered: Future[None] = Future()
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.finished: list[str] = []  # call ids whose input ended, by any way
        self.cancelled: list[str] = []  # call ids whose input was cancelled
        asyncio.run_coroutine_threadsafe(self._enter(), self.loop)

    async def _enter(self) -> None:
        try:
            if self.booted is not None:
                await asyncio.to_thread(self.booted.wait)
            for flag in (_PartialFunctionFlags.ENTER_PRE_SNAPSHOT, _PartialFunctionFlags.ENTER_POST_SNAPSHOT):
                for hook in _find_callables_for_obj(self.instance, flag).values():
                    outcome = hook()
                    if asyncio.iscoroutine(outcome):
                        await outcome
        except BaseException as exc:
            self.entered.set_exception(exc)
        else:
            self.entered.set_result(None)

    def method(self, name: str) -> Callable[..., Any]:
        return _find_callables_for_obj(self.instance, _PartialFunctionFlags.CALLABLE_INTERFACE)[name]

    def start(self, call_id: str, body: Callable[[], Any]) -> Future[Any]:
        """Run `body()` (a coroutine) as this input's task; its outcome as a thread-safe future."""
        started: Future[Any] = Future()

        async def run() -> Any:
            _set_current_context_ids([f"in-{call_id}"], [call_id], ["attempt"])
            # Inputs wait for the enter hooks (a failed one fails them); in a warm container the body
            # starts at the input's first step, so a cancel sent after `spawn` answered finds it running.
            if self.entered.done():
                self.entered.result()
            else:
                await asyncio.wrap_future(self.entered)
            try:
                return await body()
            except asyncio.CancelledError:
                self.cancelled.append(call_id)
                raise
            finally:
                self.finished.append(call_id)

        def create() -> None:
            # A context of its own: nothing of the caller's (its request's trace, say) crosses to Modal.
            task = self.loop.create_task(run(), context=contextvars.Context())
            self.tasks[call_id] = task
            started.set_result(task)

        self.loop.call_soon_threadsafe(create)
        return started

    def cancel(self, call_id: str) -> None:
        task = self.tasks.get(call_id)
        if task is not None:
            self.loop.call_soon_threadsafe(task.cancel)

    def exit(self) -> None:
        """Modal scales the container down: cancel what still runs, run the exit hooks, stop."""

        async def leave() -> None:
            for task in self.tasks.values():
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            if self.entered.done() and self.entered.exception() is None:
                for hook in _find_callables_for_obj(self.instance, _PartialFunctionFlags.EXIT).values():
                    outcome = hook()
                    if asyncio.iscoroutine(outcome):
                        await outcome

        asyncio.run_coroutine_threadsafe(leave(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class ControlPlane:
    """Every call made through the fake, by id (what `modal.FunctionCall.from_id` looks up)."""

    def __init__(self) -> None:
        self.calls: dict[str, FunctionCall] = {}
        self.outputs: dict[str, Outputs] = {}  # a generator call's outputs, by its id
        # Set by a test: the front's waits for outputs fail so (Modal's client losing its control
        # plane), while the inputs run on in their containers.
        self.waits_fail: BaseException | None = None

    def from_id(self, call_id: str) -> FunctionCall:
        return self.calls[call_id]


class _Aio:
    """`x.aio(...)`, as modal's synchronicity wrappers spell the async form."""

    def __init__(self, aio: Callable[..., Any]) -> None:
        self.aio = aio


class FunctionCall:
    def __init__(
        self, container: Container, call_id: str, outcome: Future[Any], plane: ControlPlane | None = None
    ) -> None:
        self.plane = plane
        self.object_id = call_id
        self.container = container
        self.outcome = outcome  # resolves to the input's task
        self.get = _Aio(self._get)
        self.cancel = _Aio(self._cancel)
        self.cancel_requests = 0

    async def _get(self) -> Any:
        task = await asyncio.wrap_future(self.outcome)
        if self.plane is not None and self.plane.waits_fail is not None:
            raise self.plane.waits_fail
        try:
            result = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_wait(task), self.container.loop))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise received(exc) from None
        return across(result)

    async def _cancel(self, terminate_containers: bool = False) -> None:
        self.cancel_requests += 1
        self.container.cancel(self.object_id)


async def _wait(task: asyncio.Task[Any]) -> Any:
    return await asyncio.shield(task)


class Outputs:
    """A generator input's outputs as Modal holds them: pushed from the container's thread, read in
    order by the caller. A push never depends on the caller: its loop may have ended long ago."""

    def __init__(self, reader: asyncio.AbstractEventLoop) -> None:
        self.reader = reader
        self.pushed: list[tuple[str, Any]] = []  # everything the container produced, read or not
        self._unread: collections.deque[tuple[str, Any]] = collections.deque()
        self._lock = threading.Lock()
        self._arrived = asyncio.Event()  # set on the reader's loop
        self.over = threading.Event()  # the generator has ended (its end or its error pushed)

    def push(self, kind: str, value: Any) -> None:
        with self._lock:
            self.pushed.append((kind, value))
            self._unread.append((kind, value))
        if kind != "value":
            self.over.set()
        # The reader's loop may be closed (RuntimeError): nobody reads, and the container goes on.
        with contextlib.suppress(RuntimeError):
            self.reader.call_soon_threadsafe(self._arrived.set)

    async def next(self) -> tuple[str, Any]:
        while True:
            self._arrived.clear()  # a push after this check sets it again, on this loop, later
            with self._lock:
                if self._unread:
                    return self._unread.popleft()
            await self._arrived.wait()


class Method:
    """`instance.<method>` as the front sees it: `.spawn.aio(...)` and `.remote_gen.aio(...)`."""

    def __init__(self, plane: ControlPlane, container: Container, name: str) -> None:
        self.plane, self.container, self.name = plane, container, name
        self.spawn = _Aio(self._spawn)
        self.remote_gen = _Aio(self._remote_gen)

    def _new_call(self, body: Callable[[], Any]) -> FunctionCall:
        call_id = f"fc-{next(_ids)}"
        call = FunctionCall(self.container, call_id, self.container.start(call_id, body), self.plane)
        self.plane.calls[call_id] = call
        return call

    async def _spawn(self, *args: Any) -> FunctionCall:
        method, sent = self.container.method(self.name), across(args)
        return self._new_call(lambda: method(*sent))

    async def _remote_gen(self, *args: Any) -> AsyncIterator[Any]:
        method, sent = self.container.method(self.name), across(args)
        outputs = Outputs(asyncio.get_running_loop())

        async def push_all() -> None:  # the container's side: push every output, read or not
            try:
                async for value in method(*sent):
                    outputs.push("value", across(value))
            except BaseException as exc:
                outputs.push("error", exc)
                raise
            outputs.push("end", None)

        self.plane.outputs[self._new_call(push_all).object_id] = outputs
        while True:
            kind, value = await outputs.next()
            if kind == "end":
                return
            if kind == "error":
                if isinstance(value, asyncio.CancelledError):
                    raise ExecutionError("the function call was cancelled")
                raise received(value)
            yield value


class Instance:
    """`GpuClass()` as the front sees it: each method of one container."""

    def __init__(self, plane: ControlPlane, container: Container) -> None:
        self.container = container
        self.run = Method(plane, container, "run")
        self.stream = Method(plane, container, "stream")
        self.describe = Method(plane, container, "describe")


class Deployment:
    """The GPU classes of a deployment as the web container sees them: one container per model,
    started on the first call for it (a warm pool of one)."""

    def __init__(self, make_instance: Callable[[str], Any]) -> None:
        self.make_instance = make_instance
        self.plane = ControlPlane()
        self.containers: dict[str, Container] = {}
        self.booted: threading.Event | None = None  # set by a test: new containers start cold

    def gpu_class(self, model_id: str) -> Callable[[], Instance]:
        def construct() -> Instance:
            if model_id not in self.containers:
                self.containers[model_id] = Container(self.make_instance(model_id), self.booted)
            return Instance(self.plane, self.containers[model_id])

        return construct

    def close(self) -> None:
        for container in self.containers.values():
            container.exit()


# --- modal.Dict ---------------------------------------------------------------------------------
# (Kept apart from the call machinery above: other fakes of modal's primitives go in sections of
# their own.)


class _Both:
    """A method as modal's synchronicity wrappers offer it: called plainly (blocking) or as `.aio(...)`."""

    def __init__(self, body: Callable[..., Any]) -> None:
        self._body = body

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._body(*args, **kwargs)

    async def aio(self, *args: Any, **kwargs: Any) -> Any:
        return self._body(*args, **kwargs)


class Dict:
    """A `modal.Dict` as modal 1.6.4's `modal/dict.py` behaves: one store seen by every container
    (the fronts' and the GPU's threads alike); keys and values cross by Modal's serializer (so a
    value read is a copy, and an unpicklable key or value fails at the caller); `get`'s default,
    `put(skip_if_exists=)` answering whether it wrote, `pop`'s KeyError, iteration in no
    particular order ("results are unordered"), as a one-pass iterator ("the return value is a
    simple iterator"); each method plain or as `.aio`."""

    def __init__(self) -> None:
        self._items: dict[bytes, bytes] = {}
        self._lock = threading.Lock()
        self.writes = 0  # puts made, for tests that check what was recorded
        self.put = _Both(self._put)
        self.get = _Both(self._get)
        self.contains = _Both(self._contains)
        self.pop = _Both(self._pop)
        self.len = _Both(self._len)
        self.items = _Both(lambda: iter(self._items_now()))
        self.keys = _Both(lambda: (key for key, _ in self._items_now()))

    def _put(self, key: Any, value: Any, *, skip_if_exists: bool = False) -> bool:
        """True if added; False if `skip_if_exists` and the key was there (`_Dict.put`)."""
        packed_key, packed_value = serialize(key), serialize(value)
        with self._lock:
            if skip_if_exists and packed_key in self._items:
                return False
            self._items[packed_key] = packed_value
            self.writes += 1
        return True

    def _get(self, key: Any, default: Any = None) -> Any:
        with self._lock:
            packed = self._items.get(serialize(key))
        return default if packed is None else deserialize(packed, None)

    def _contains(self, key: Any) -> bool:
        with self._lock:
            return serialize(key) in self._items

    def _pop(self, key: Any, *default: Any) -> Any:
        """The value, removed; `default` if given and missing, else KeyError (`_Dict.pop`)."""
        with self._lock:
            packed = self._items.pop(serialize(key), None)
        if packed is None:
            if default:
                return default[0]
            raise KeyError(f"{key} not in dict")
        return deserialize(packed, None)

    def _len(self) -> int:
        with self._lock:
            return len(self._items)

    def _items_now(self) -> list[tuple[Any, Any]]:
        with self._lock:
            snapshot = list(self._items.items())
        random.shuffle(snapshot)
        return [(deserialize(key, None), deserialize(value, None)) for key, value in snapshot]

    def __getitem__(self, key: Any) -> Any:
        if not self._contains(key):
            raise KeyError(f"{key} not in dict")
        return self._get(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._put(key, value)
