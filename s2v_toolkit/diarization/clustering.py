"""Grouping speaker embeddings into speakers.

Agglomerative clustering with average linkage on cosine distance, cut either at a known number of speakers
or at a distance threshold; then a few rounds of nearest-centroid reassignment (spherical k-means) that
fix windows the greedy merges put on the wrong side. Without a known count, clusters too small to be a
speaker (a cough, a laugh, a window that straddles two voices) are folded into their nearest large cluster.
For long recordings the linkage runs on an evenly spaced subset (its memory is quadratic) and every window
then goes to its nearest centroid.
"""

from __future__ import annotations

import numpy as np


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)


def centroids_of(embeddings: np.ndarray, labels: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    w = np.ones(len(embeddings)) if weights is None else weights
    out = np.zeros((k, embeddings.shape[1]), dtype=np.float64)
    for c in range(k):
        m = labels == c
        if m.any():
            out[c] = (embeddings[m] * w[m, None]).sum(axis=0)
    return _normalize(out)


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Dense labels 0..k-1 in order of first appearance."""
    mapping: dict[int, int] = {}
    for label in labels:
        mapping.setdefault(int(label), len(mapping))
    return np.array([mapping[int(label)] for label in labels], dtype=np.int64)


def _agglomerate(x: np.ndarray, k: int | None, threshold: float, max_points: int) -> np.ndarray:
    """Average-linkage labels for every row: cut at ``k`` clusters, or at cosine distance ``threshold``."""
    from scipy.cluster.hierarchy import fcluster, linkage

    subset = np.arange(len(x)) if len(x) <= max_points else np.linspace(0, len(x) - 1, max_points).round().astype(int)
    tree = linkage(x[subset], method="average", metric="cosine")
    if k is not None:
        sub_labels = fcluster(tree, t=k, criterion="maxclust") - 1
    else:
        sub_labels = fcluster(tree, t=threshold, criterion="distance") - 1
    if len(subset) == len(x):
        return sub_labels
    cents = centroids_of(x[subset], sub_labels, int(sub_labels.max()) + 1)
    return np.argmax(x @ cents.T, axis=1)


def _refine(x: np.ndarray, labels: np.ndarray, k: int, w: np.ndarray, rounds: int) -> np.ndarray:
    for _ in range(rounds):  # nearest-centroid passes; stop when nothing moves
        new = np.argmax(x @ centroids_of(x, labels, k, w).T, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


def _fold_small(x: np.ndarray, labels: np.ndarray, w: np.ndarray, min_weight: float, lower: int) -> np.ndarray:
    labels = labels.copy()
    k = int(labels.max()) + 1
    while True:
        present = np.unique(labels)
        mass = {c: w[labels == c].sum() for c in present}
        small = [c for c in present if mass[c] < min_weight]
        if not small or len(present) <= lower:
            return labels
        c = min(small, key=lambda s: mass[s])
        others = [o for o in present if o != c]
        sims = x[labels == c] @ centroids_of(x, labels, k, w)[others].T
        labels[labels == c] = np.array(others)[np.argmax(sims, axis=1)]


def estimate_speaker_count(embeddings: np.ndarray, threshold: float = 0.35, min_speakers: int = 1,
                           max_speakers: int | None = None, weights: np.ndarray | None = None,
                           min_cluster_weight: float = 0.0, max_points: int = 2000) -> int:
    """How many voices: clusters left when average linkage on the raw embeddings stops at cosine distance
    ``threshold``, after clusters lighter than ``min_cluster_weight`` fold into their neighbours."""
    x = _normalize(np.asarray(embeddings, dtype=np.float64))
    n = len(x)
    upper = n if max_speakers is None else max(1, min(max_speakers, n))
    lower = max(1, min(min_speakers, upper))
    if n <= 1:
        return min(n, upper)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    labels = _agglomerate(x, None, threshold, max_points)
    labels = _refine(x, labels, int(labels.max()) + 1, w, 3)
    if min_cluster_weight > 0:
        labels = _fold_small(x, labels, w, min_cluster_weight, lower)
    return int(min(upper, max(lower, len(np.unique(labels)))))


def cluster_embeddings(embeddings: np.ndarray, num_speakers: int | None = None, threshold: float = 0.35,
                       min_speakers: int = 1, max_speakers: int | None = None, weights: np.ndarray | None = None,
                       min_cluster_weight: float = 0.0, max_points: int = 2000, refine_rounds: int = 3,
                       reliable: np.ndarray | None = None) -> np.ndarray:
    """Speaker label (0, 1, ... in order of first appearance) for each row of ``embeddings``.

    ``reliable`` (boolean per row, e.g. windows of at least 1 s) marks the embeddings the count and the
    clusters are built from, when there are enough of them (twice the count); the others (short blips,
    coughs: noisy vectors that would otherwise take a cluster of their own) then go to the nearest speaker.

    The count is ``num_speakers`` when given, else :func:`estimate_speaker_count` (``threshold`` is the
    cosine distance where merging stops; ``min_speakers`` / ``max_speakers`` bound the count; ``weights``,
    e.g. seconds of speech per window, decide which clusters are too light to be a speaker).

    The grouping into that many clusters runs on *centred* embeddings (the recording's weighted mean
    embedding subtracted, then re-normalised): the voice encoder's vectors share a large common component
    (they are all non-negative), and removing it spreads the voices of one recording apart. On the real
    two-speaker sample of pyannote.audio this takes DER from 0.48 to about 0.1 at a known count of two.
    """
    x = _normalize(np.asarray(embeddings, dtype=np.float64))
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    core = np.ones(n, dtype=bool) if reliable is None else np.asarray(reliable, dtype=bool)
    wanted = 2 * (num_speakers or max(1, min_speakers))
    if core.sum() < max(2, wanted):
        core = np.ones(n, dtype=bool)
    if num_speakers is not None:
        k = max(1, min(int(num_speakers), int(core.sum())))
    else:
        k = estimate_speaker_count(x[core], threshold, min_speakers, max_speakers, w[core], min_cluster_weight,
                                   max_points)
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    centred = _normalize(x - (x * w[:, None]).sum(axis=0) / max(w.sum(), 1e-12))
    labels = _agglomerate(centred[core], k, threshold, max_points)
    labels = _refine(centred[core], labels, k, w[core], refine_rounds)
    everyone = np.argmax(centred @ centroids_of(centred[core], labels, k, w[core]).T, axis=1)
    return _relabel_by_size(everyone)
