"""The batching queue between HTTP handlers and the model backend.

Handlers submit documents; they are planned (sentences, mentions, windows) off the event loop, except
small ones (a sentence or two), which plan faster than a thread hop takes, and the planned windows wait
in the queue. One worker task runs model calls of at most `batch_size` windows on a single model thread,
each call mixing windows of several requests: a request is admitted and shed by the work it brings (its
windows), not by its number of documents, so one heavy request cannot hold the model while small ones
wait behind it.

Limits, all settings:
- a request that needs more than `max_request_windows` windows is refused with 422 (split it);
- a request that would take the queue past `max_queued_windows` windows is refused at once with 503;
- more than `max_queued_documents` documents being planned or queued: 503 before any planning;
- a request not answered within `timeout_s` gets 503 and its windows leave the queue.
Every 503 carries Retry-After, estimated from the queued windows and the measured model throughput.

Scheduling: the oldest request gets a quarter of every model call (so it always progresses), and the rest
goes to the requests with the fewest windows left, so a small request is answered within about one model
call even while heavy ones run. A model call that fails is retried request by request: only the request
whose windows fail again gets the error (500, logged), the others are answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from serving.errors import ServiceError
from serving.metrics import Metrics
from training.predictor import MAX_DETECTED_PAIRS, Document, DocumentPlan, Predictor

logger = logging.getLogger(__name__)

HEAVY_PLANNING_COST = 200_000
"""Planning cost (text characters x pairs) above which a request is planned on the single heavy-planning
thread, so long documents with many pairs cannot occupy every planning thread while short ones wait."""
HEAVY_PLANNING_BACKLOG = 8
"""Heavy requests waiting for the heavy-planning thread before more are refused with 503."""
INLINE_PLANNING_COST = 2_000
"""Planning cost up to which a request is planned on the event loop itself: a sentence with a party or
two plans in about a tenth of a millisecond, less than the hop to a planning thread and back costs."""


def planning_cost(documents: list[Document]) -> int:
    """Rough CPU cost of planning: each pair scans the whole text (detection reads up to MAX_DETECTED_PAIRS)."""
    return sum(len(d.text) * (1 + (MAX_DETECTED_PAIRS if d.pairs is None else len(d.pairs))) for d in documents)


@dataclass(eq=False)
class _Job:
    """One request's planned windows, answered once every window has been classified."""

    plans: list[DocumentPlan]
    inputs: list[tuple[str, str]]
    future: asyncio.Future
    cursor: int = 0
    chunks: list[dict[str, np.ndarray]] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return len(self.inputs) - self.cursor


class BatchQueue:
    def __init__(
        self,
        predictor: Predictor,
        batch_size: int,
        wait_ms: float,
        max_queued_documents: int,
        metrics: Metrics,
        max_queued_windows: int = 2048,
        max_request_windows: int = 1024,
        timeout_s: float = 30.0,
    ) -> None:
        self.predictor = predictor
        self.batch_size = batch_size
        self.wait_seconds = wait_ms / 1000
        self.max_queued_documents = max_queued_documents
        self.max_queued_windows = max_queued_windows
        self.max_request_windows = max_request_windows
        self.timeout_s = timeout_s
        self.metrics = metrics
        self.pending_documents = 0
        self._heavy_waiting = 0
        self._active: list[_Job] = []
        self._arrived = asyncio.Event()
        self._windows_per_second = 0.0
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stanceline-model")
        self._light_planner = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stanceline-plan")
        self._heavy_planner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stanceline-plan-heavy")
        self._worker: asyncio.Task | None = None

    # --- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="stanceline-batcher")
        self._worker.add_done_callback(self._worker_ended)

    @property
    def running(self) -> bool:
        """Whether the worker that answers queued requests is alive (what /health reports)."""
        return self._worker is not None and not self._worker.done()

    def _worker_ended(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("the batching worker stopped", exc_info=task.exception())
        for job in self._active:
            if not job.future.done():
                job.future.set_exception(ServiceError("not_ready", "the model worker stopped", retry_after=5))
        self._active.clear()

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for pool in (self._model_thread, self._light_planner, self._heavy_planner):
            pool.shutdown(wait=False, cancel_futures=True)

    # --- admission ------------------------------------------------------------------------------
    @property
    def queued_windows(self) -> int:
        return sum(job.remaining for job in self._active if not job.future.done())

    def retry_after(self) -> int:
        """Seconds until the queued windows are likely answered, from the measured throughput (1 to 60)."""
        if self._windows_per_second <= 0:
            return 1
        return max(1, min(60, math.ceil(self.queued_windows / self._windows_per_second)))

    def _shed(self, reason: str, message: str) -> ServiceError:
        self.metrics.shed.labels(reason).inc()
        return ServiceError("overloaded", message, retry_after=self.retry_after())

    async def predict(self, documents: list[Document]) -> list[dict[str, Any]]:
        """Answers for `documents`, their windows batched with whatever else is waiting."""
        if not self.running:
            raise ServiceError("not_ready", "the model worker is not running", retry_after=5)
        if self.pending_documents + len(documents) > self.max_queued_documents:
            raise self._shed("documents", f"server busy: {self.pending_documents} documents queued; retry shortly")
        cost = planning_cost(documents)
        heavy = cost > HEAVY_PLANNING_COST
        if heavy and self._heavy_waiting >= HEAVY_PLANNING_BACKLOG:
            raise self._shed("planning", f"server busy: {self._heavy_waiting} long requests are being read; retry shortly")
        loop = asyncio.get_running_loop()
        self.pending_documents += len(documents)
        self._heavy_waiting += heavy
        self._gauge()
        try:
            async with asyncio.timeout(self.timeout_s):
                try:
                    if cost <= INLINE_PLANNING_COST:
                        plans = [self.predictor.plan(document) for document in documents]
                    else:
                        planner = self._heavy_planner if heavy else self._light_planner
                        plans = await loop.run_in_executor(planner, lambda: [self.predictor.plan(d) for d in documents])
                finally:
                    self._heavy_waiting -= heavy
                return await self._enqueue(plans, loop)
        except TimeoutError:
            self.metrics.shed.labels("timeout").inc()
            raise ServiceError(
                "timeout",
                f"not answered within {self.timeout_s:g} s (STANCELINE_REQUEST_TIMEOUT_S): the server is busy; retry later",
                retry_after=self.retry_after(),
            ) from None
        finally:
            self.pending_documents -= len(documents)
            self._gauge()

    async def _enqueue(self, plans: list[DocumentPlan], loop: asyncio.AbstractEventLoop) -> list[dict[str, Any]]:
        inputs = [(m.target, m.window_text) for plan in plans for m in plan.model_inputs]
        if len(inputs) > self.max_request_windows:
            raise ServiceError(
                "too_many_items",
                f"this request needs {len(inputs)} model windows; the limit is {self.max_request_windows} "
                "(STANCELINE_MAX_REQUEST_WINDOWS): send fewer pairs, shorter texts or fewer documents per request",
            )
        if not inputs:
            return self.predictor.answer_plans(plans, self.predictor.classifier.predict([]))
        queued = self.queued_windows
        if queued + len(inputs) > self.max_queued_windows:
            raise self._shed("windows", f"server busy: {queued} model windows queued; retry shortly")
        job = _Job(plans, inputs, loop.create_future())
        self._active.append(job)
        self._gauge()
        self._arrived.set()
        try:
            return await job.future
        finally:
            if not job.future.done():
                job.future.cancel()  # deadline or client gone: the worker drops its remaining windows
            self._gauge()

    def _gauge(self) -> None:
        self.metrics.queue_depth.set(self.pending_documents)
        self.metrics.queued_windows.set(self.queued_windows)

    # --- the worker -----------------------------------------------------------------------------
    def _prune(self) -> list[_Job]:
        self._active = [job for job in self._active if not job.future.done()]
        return self._active

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._prune():
                self._arrived.clear()
                await self._arrived.wait()
                await self._fill()
            picks = self._take()
            if picks:
                await self._classify(loop, picks)
            self._gauge()

    async def _fill(self) -> None:
        """After idling, wait up to `batch_wait_ms` for more requests to share the first model call."""
        deadline = time.monotonic() + self.wait_seconds
        while self.queued_windows < self.batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    def _take(self) -> list[tuple[_Job, int, int]]:
        """The windows of the next model call as (job, start, end): a quarter of the call for the oldest job,
        the rest to the jobs with the fewest windows left."""
        live = self._prune()
        if not live:
            return []
        oldest, room = live[0], self.batch_size
        counts = {oldest: min(oldest.remaining, max(1, self.batch_size // 4))}
        room -= counts[oldest]
        for job in sorted(live[1:], key=lambda job: job.remaining):
            if room <= 0:
                break
            counts[job] = min(room, job.remaining)
            room -= counts[job]
        if room > 0:
            counts[oldest] += min(room, oldest.remaining - counts[oldest])
        return [(job, job.cursor, job.cursor + count) for job, count in counts.items() if count > 0]

    async def _classify(self, loop: asyncio.AbstractEventLoop, picks: list[tuple[_Job, int, int]]) -> None:
        inputs = [pair for job, start, end in picks for pair in job.inputs[start:end]]
        self.metrics.batch_windows.observe(len(inputs))
        self.metrics.batch_documents.observe(sum(len(job.plans) for job, _, _ in picks))
        started = time.monotonic()
        try:
            probabilities = await loop.run_in_executor(self._model_thread, self.predictor.classifier.predict, inputs)
        except Exception:
            await self._classify_one_by_one(loop, picks)
            return
        self._measure(len(inputs), time.monotonic() - started)
        offset = 0
        for job, start, end in picks:
            size = end - start
            self._store(job, {task: values[offset : offset + size] for task, values in probabilities.items()}, end)
            offset += size

    async def _classify_one_by_one(self, loop: asyncio.AbstractEventLoop, picks: list[tuple[_Job, int, int]]) -> None:
        """After a failed model call: each request's windows alone, so only the guilty request fails."""
        for job, start, end in picks:
            try:
                probabilities = await loop.run_in_executor(
                    self._model_thread, self.predictor.classifier.predict, job.inputs[start:end]
                )
            except Exception as error:
                logger.exception("model call failed for a request of %d document(s), %d windows", len(job.plans), len(job.inputs))
                if not job.future.done():
                    job.future.set_exception(
                        ServiceError("internal", f"the model failed on this request: {type(error).__name__}: {error}")
                    )
                continue
            self._store(job, probabilities, end)

    def _store(self, job: _Job, probabilities: dict[str, np.ndarray], end: int) -> None:
        if job.future.done():
            return
        job.chunks.append(probabilities)
        job.cursor = end
        if job.remaining:
            return
        joined = {task: np.concatenate([chunk[task] for chunk in job.chunks]) for task in job.chunks[0]}
        try:
            job.future.set_result(self.predictor.answer_plans(job.plans, joined))
        except Exception as error:  # an answer that cannot be assembled fails its own request only
            logger.exception("assembling an answer failed")
            job.future.set_exception(ServiceError("internal", f"could not assemble the answer: {type(error).__name__}"))

    def _measure(self, windows: int, seconds: float) -> None:
        if seconds > 0:
            rate = windows / seconds
            self._windows_per_second = rate if not self._windows_per_second else 0.8 * self._windows_per_second + 0.2 * rate
