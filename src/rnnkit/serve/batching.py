"""Micro-batching: concurrent requests share one forward pass.

Each request puts its texts in a queue and awaits their results (one asyncio future per text). One
worker task takes the first waiting text, then keeps gathering until it holds ``max_batch`` texts or
``max_wait_ms`` have passed since the first one arrived, and runs the whole group as one call of the
model's function in a worker thread, so the event loop keeps accepting requests meanwhile. Texts that
arrive during a forward pass queue up and form the next batch. A recurrent network's cost grows with
the batch's longest text, so the function sorts each batch by length
(:meth:`rnnkit.api.ClassifierRun.predict` and :meth:`rnnkit.export.ExportedClassifier.predict` both do).

The wait only applies under load: when the previous forward pass ran a single text, the next one runs
whatever is queued at once, so a lone client never waits ``max_wait_ms`` for company that is not coming.

>>> import asyncio
>>> calls = []
>>> def shout(texts):
...     calls.append(len(texts))
...     return [t.upper() for t in texts]
>>> async def main():
...     batcher = MicroBatcher(shout, max_batch=8, max_wait_ms=50)
...     results = await asyncio.gather(*(batcher.submit([t]) for t in ["a", "b", "c"]))
...     await batcher.close()
...     return results
>>> asyncio.run(main()), calls
([['A'], ['B'], ['C']], [3])
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

__all__ = ["MicroBatcher", "BatcherClosed"]


class BatcherClosed(RuntimeError):
    """The batcher is shutting down and takes no new work."""


@dataclass
class _Item:
    value: Any
    future: asyncio.Future


class MicroBatcher:
    """Group concurrent :meth:`submit` calls into calls of ``fn`` on up to ``max_batch`` items.

    Args:
        fn: ``fn(items) -> results``, one result per item, in order. Runs in a worker thread, one
            call at a time.
        max_batch: the most items per call (1 = every item alone: no batching).
        max_wait_ms: how long the first item of a batch waits for others to join it.
        on_batch: called on the event loop after each call with ``(batch size, seconds)``.
        on_queue: called with the number of queued items whenever it changes.
        wrap: a context manager factory entered around each call in the worker thread
            (e.g. ``torch.inference_mode``, which is per thread).

    Raises:
        ValueError: ``max_batch`` < 1 or ``max_wait_ms`` < 0.
    """

    def __init__(
        self,
        fn: Callable[[list[Any]], Sequence[Any]],
        *,
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        on_batch: Callable[[int, float], None] | None = None,
        on_queue: Callable[[int], None] | None = None,
        wrap: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ):
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be an integer ≥ 1, got {max_batch!r}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be ≥ 0, got {max_wait_ms!r}")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch
        self.on_queue = on_queue
        self.wrap = wrap
        self._items: deque[_Item] = deque()
        self._arrived: asyncio.Event | None = None  # set whenever items are queued
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self._active = False  # a batch is being gathered or run
        self._last_size = 0  # items in the previous batch: more than one means load, worth waiting for

    @property
    def queued(self) -> int:
        """Items waiting for a batch."""
        return len(self._items)

    def _start(self) -> None:
        """The event, the model thread and the worker task, on the running loop (at first use)."""
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnkit-model")
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="rnnkit-batcher")

    async def submit(self, items: Sequence[Any]) -> list[Any]:
        """Run ``items`` through ``fn`` (batched with other callers' items); their results in order.

        Raises:
            BatcherClosed: :meth:`close` was called.
            Exception: whatever ``fn`` raised for the batch these items were in.
        """
        if self._closing:
            raise BatcherClosed("the server is shutting down")
        if not items:
            return []
        if self._worker is None:
            self._start()
        loop = asyncio.get_running_loop()
        queued = [_Item(value, loop.create_future()) for value in items]
        self._items.extend(queued)
        self._arrived.set()
        self._report_queue()
        return list(await asyncio.gather(*(item.future for item in queued)))

    def _report_queue(self) -> None:
        if self.on_queue is not None:
            self.on_queue(len(self._items))

    async def _gather(self) -> list[_Item]:
        """Wait for one item, then take more until ``max_batch`` or ``max_wait`` after the first
        (no waiting, only what is queued, after a batch of one)."""
        while not self._items:
            self._arrived.clear()
            await self._arrived.wait()
        self._active = True  # set before any await, so close() never sees an empty queue and no batch
        batch = [self._items.popleft()]
        deadline = time.monotonic() + (self.max_wait if self._last_size > 1 else 0.0)
        while len(batch) < self.max_batch:
            if self._items:
                batch.append(self._items.popleft())
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closing:
                break
            self._arrived.clear()
            try:  # waiting on an event, not on the queue: a timeout never loses an item
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                break
        self._report_queue()
        return batch

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            live = [item for item in batch if not item.future.done()]  # a cancelled request drops out
            start = time.perf_counter()
            try:
                if live:
                    results = await loop.run_in_executor(self._executor, self._call, [i.value for i in live])
                    self._resolve(live, results)
            except Exception as error:  # every request in the batch gets the error
                for item in live:
                    if not item.future.done():
                        item.future.set_exception(error)
            finally:
                self._active = False
                self._last_size = len(live)
            if live and self.on_batch is not None:
                self.on_batch(len(live), time.perf_counter() - start)

    @staticmethod
    def _resolve(items: list[_Item], results: Sequence[Any]) -> None:
        if len(results) != len(items):
            raise RuntimeError(f"the batch function returned {len(results)} results for {len(items)} items")
        for item, result in zip(items, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)

    def _call(self, values: list[Any]) -> Sequence[Any]:
        with self.wrap():
            return self.fn(values)

    async def close(self) -> None:
        """Finish every queued item, then stop the worker and its thread. New submits are refused."""
        self._closing = True
        if self._worker is None:
            return
        if self._arrived is not None:
            self._arrived.set()  # a batch still gathering stops waiting for more
        while self._items or self._active:
            await asyncio.sleep(0.001)
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._executor.shutdown(wait=True)
        self._worker = None
