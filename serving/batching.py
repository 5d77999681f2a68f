"""The batching queue between HTTP handlers and the model backend.

Handlers submit planned documents; one worker task gathers the windows of every waiting document until
a batch is full (`batch_size` windows) or `batch_wait_ms` has passed, runs one model call off the event
loop on a single model thread, and hands each document its answer. The queue holds at most
`max_queued_documents`; past that it refuses at once (503) rather than queueing forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from serving.errors import ServiceError
from serving.metrics import Metrics
from training.predictor import Document, DocumentPlan, Predictor


@dataclass
class _Job:
    plans: list[DocumentPlan]
    future: asyncio.Future
    windows: int


class BatchQueue:
    def __init__(
        self, predictor: Predictor, batch_size: int, wait_ms: float, max_queued_documents: int, metrics: Metrics
    ) -> None:
        self.predictor = predictor
        self.batch_size = batch_size
        self.wait_seconds = wait_ms / 1000
        self.max_queued_documents = max_queued_documents
        self.metrics = metrics
        self.pending_documents = 0
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stanceline-model")
        self._worker: asyncio.Task | None = None

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="stanceline-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._model_thread.shutdown(wait=False, cancel_futures=True)

    async def predict(self, documents: list[Document]) -> list[dict[str, Any]]:
        """Answers for `documents`, batched with whatever else is waiting."""
        if self._worker is None or self._worker.done():
            raise ServiceError("not_ready", "the model worker is not running")
        if self.pending_documents + len(documents) > self.max_queued_documents:
            raise ServiceError("overloaded", f"server busy: {self.pending_documents} documents queued; retry shortly")
        loop = asyncio.get_running_loop()
        self.pending_documents += len(documents)
        self.metrics.queue_depth.set(self.pending_documents)
        try:
            plans = await loop.run_in_executor(None, lambda: [self.predictor.plan(d) for d in documents])
            future = loop.create_future()
            await self._queue.put(_Job(plans, future, sum(len(p.model_inputs) for p in plans)))
            return await future
        finally:
            self.pending_documents -= len(documents)
            self.metrics.queue_depth.set(self.pending_documents)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            windows = jobs[0].windows
            deadline = time.monotonic() + self.wait_seconds
            while windows < self.batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
                jobs.append(job)
                windows += job.windows
            await self._answer(loop, jobs, windows)

    async def _answer(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job], windows: int) -> None:
        inputs = [(m.target, m.window_text) for job in jobs for plan in job.plans for m in plan.model_inputs]
        self.metrics.batch_windows.observe(windows)
        self.metrics.batch_documents.observe(sum(len(job.plans) for job in jobs))
        try:
            probabilities = await loop.run_in_executor(self._model_thread, self.predictor.classifier.predict, inputs)
        except Exception as error:  # the model failed: every waiting request learns why, none hangs
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(ServiceError("internal", f"model failure: {type(error).__name__}: {error}"))
            return
        answers = self.predictor.answer_plans([plan for job in jobs for plan in job.plans], probabilities)
        cursor = 0
        for job in jobs:
            if not job.future.done():
                job.future.set_result(answers[cursor : cursor + len(job.plans)])
            cursor += len(job.plans)
