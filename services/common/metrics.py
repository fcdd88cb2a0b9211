"""Prometheus metrics shared by every service: one registry, names prefixed `parlons_`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

REQUESTS = Counter(
    "parlons_requests_total", "RPCs finished, by method and status code", ["method", "code"]
)
LATENCY = Histogram(
    "parlons_request_seconds",
    "RPC wall time",
    ["method"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
)
AUDIO_SECONDS = Counter(
    "parlons_audio_seconds_total", "Seconds of audio processed", ["service"]
)
REAL_TIME_FACTOR = Histogram(
    "parlons_real_time_factor",
    "Processing time divided by audio duration",
    ["service"],
    buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
QUEUE_DEPTH = Gauge("parlons_queue_depth", "Requests waiting for a model", ["service"])
IN_FLIGHT = Gauge("parlons_in_flight", "Requests being processed by a model", ["service"])
REJECTED = Counter(
    "parlons_rejected_total", "Requests refused because the queue was full", ["service"]
)
BATCH_SIZE = Histogram(
    "parlons_batch_size", "Items per model batch", ["service"], buckets=(1, 2, 4, 8, 16, 32, 64, 128)
)
MODEL_LOAD_SECONDS = Gauge("parlons_model_load_seconds", "Time to load a model", ["service", "model"])
ACTIVE_STREAMS = Gauge("parlons_active_streams", "Open streaming calls", ["service"])
# Live decoding (transcription): the shared scheduler of every live session's decodes.
LIVE_BACKLOG_SECONDS = Gauge(
    "parlons_live_backlog_seconds",
    "Age of the oldest live decode waiting for the model (0 when none waits)",
    ["service"],
)
LIVE_BATCH_SIZE = Histogram(
    "parlons_live_batch_size",
    "Live decodes per model call, by kind (final, interim, language)",
    ["service", "kind"],
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 128),
)
LIVE_FINAL_LATENCY = Histogram(
    "parlons_live_final_latency_seconds",
    "Arrival of an utterance's last audio to its final result leaving the server",
    ["service"],
    buckets=(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30),
)
LIVE_STREAMS_REFUSED = Counter(
    "parlons_live_streams_refused_total",
    "Live streams refused because the replica was at its capacity",
    ["service"],
)


def start_metrics_server(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics over HTTP for Prometheus; port 0 disables it."""
    if port > 0:
        start_http_server(port, addr=host)
