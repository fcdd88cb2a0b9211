"""How many speakers, and how sure: pyannote's agglomerative clustering, plus a count report.

pyannote picks the number of speakers by cutting its dendrogram at one threshold; a
threshold a little higher or lower may give another count, and nothing says so. This
clustering also cuts the same dendrogram (same embeddings, same linkage, same minimum
cluster size) at thresholds spread around the configured one, and reports the share that
give each count: the estimate is the count at the configured threshold, its confidence
the share of the band that agrees with it. The clustering itself is pyannote's, unchanged.

The report travels in the pipeline's output (`pipeline.CountedDiarizeOutput`): the
pipeline collects what its clustering reports during one call (`collect_count_reports`,
a context variable, so concurrent calls from worker threads never see each other's).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from parlons.torch_compat import prepare_pyannote_import

prepare_pyannote_import()

import numpy as np  # noqa: E402
from pyannote.audio.pipelines.clustering import AgglomerativeClustering  # noqa: E402
from scipy.cluster.hierarchy import fcluster, linkage  # noqa: E402

# Thresholds tried each side of the configured one (distances between unit vectors, 0-2).
COUNT_POINTS = 21


@dataclass(frozen=True)
class CountReport:
    """The clustering's own count (before num/min/max speakers), and how far it holds."""

    estimated: int
    confidence: float
    # count -> share of the thresholds tried that give it
    distribution: dict[int, float] = field(default_factory=dict)


_collected: ContextVar[list[CountReport] | None] = ContextVar("parlons_count_reports", default=None)


@contextlib.contextmanager
def collect_count_reports() -> Iterator[list[CountReport]]:
    """The reports the clustering makes within the block (one per clustering run)."""
    reports: list[CountReport] = []
    token = _collected.set(reports)
    try:
        yield reports
    finally:
        _collected.reset(token)


def large_cluster_counts(
    dendrogram: np.ndarray, thresholds: np.ndarray, min_cluster_size: int
) -> list[int]:
    """Clusters of at least min_cluster_size members when cutting at each threshold
    (pyannote then folds the small ones into the large; none large counts as one)."""
    counts = []
    for threshold in thresholds:
        clusters = fcluster(dendrogram, float(threshold), criterion="distance")
        _, sizes = np.unique(clusters, return_counts=True)
        counts.append(max(int(np.sum(sizes >= min_cluster_size)), 1))
    return counts


def count_report(embeddings: np.ndarray, *, threshold: float, method: str, metric: str,
                 min_cluster_size: int, band: float) -> CountReport:
    """The count at `threshold` and the share of [threshold - band, threshold + band] that
    gives the same count, on the embeddings pyannote clusters (one row per speaker turn)."""
    n = embeddings.shape[0]
    if n == 0:
        return CountReport(0, 1.0, {0: 1.0})
    if n == 1:
        return CountReport(1, 1.0, {1: 1.0})
    # pyannote's own reduction of the minimum size on short files
    size = min(min_cluster_size, max(1, round(0.1 * n)))
    if metric == "cosine" and method in ("centroid", "median", "ward"):
        with np.errstate(divide="ignore", invalid="ignore"):
            unit = embeddings / np.linalg.norm(embeddings, axis=-1, keepdims=True)
        dendrogram = linkage(unit, method=method, metric="euclidean")
    else:
        dendrogram = linkage(embeddings, method=method, metric=metric)
    estimated = large_cluster_counts(dendrogram, np.array([threshold]), size)[0]
    thresholds = np.linspace(max(threshold - band, 1e-6), threshold + band, COUNT_POINTS)
    counts = large_cluster_counts(dendrogram, thresholds, size)
    values, tallies = np.unique(counts, return_counts=True)
    distribution = {int(v): round(float(t) / len(counts), 3) for v, t in zip(values, tallies)}
    return CountReport(estimated, distribution.get(estimated, 0.0), distribution)


class CountingAgglomerativeClustering(AgglomerativeClustering):
    """pyannote's AgglomerativeClustering; each call also reports a CountReport to the
    pipeline call it runs in (`collect_count_reports`)."""

    #: Half-width of the band of thresholds the count is checked over.
    count_band: float = 0.1

    def __call__(self, embeddings: np.ndarray, segmentations: Any = None, num_clusters: int | None = None,
                 min_clusters: int | None = None, max_clusters: int | None = None,
                 **kwargs: Any) -> Any:
        train, _, _ = self.filter_embeddings(embeddings, segmentations=segmentations)
        reports = _collected.get()
        if reports is not None:
            reports.append(count_report(
                np.array(train, dtype=np.float64), threshold=float(self.threshold), method=str(self.method),
                metric=str(self.metric), min_cluster_size=int(self.min_cluster_size), band=self.count_band,
            ))
        return super().__call__(embeddings, segmentations=segmentations, num_clusters=num_clusters,
                                min_clusters=min_clusters, max_clusters=max_clusters, **kwargs)
