"""Prometheus metrics of one app instance (own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "stanceline_requests", "HTTP requests by route and status", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "stanceline_request_latency_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.batch_windows = Histogram(
            "stanceline_batch_windows",
            "model windows per forward batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )
        self.batch_documents = Histogram(
            "stanceline_batch_documents",
            "documents per forward batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.queue_depth = Gauge("stanceline_queue_depth", "documents waiting for the model", registry=self.registry)
        self.queued_windows = Gauge("stanceline_queued_windows", "model windows waiting in the queue", registry=self.registry)
        self.shed = Counter(
            "stanceline_shed_requests",
            "requests refused with 503 by reason: documents, planning, windows (queue full) or timeout",
            ["reason"],
            registry=self.registry,
        )
