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
        sims = x @ centroids_of(x, labels, k, w).T
        sims[:, np.bincount(labels, minlength=k) == 0] = -np.inf  # an emptied cluster attracts nobody
        new = np.argmax(sims, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


MIN_SPEAKER_SECONDS = 1.5  # speech a cluster needs before it can stand as a voice of its own
MIN_SPEAKER_WINDOWS = 3  # ... and embeddings: a print of fewer is too noisy to call a voice
CLEAR_JUMP = 1.5  # a merge this many times farther apart than the one before it separates voices
SELF_MARGIN = 0.03  # two groups are two voices when their prints are this much less alike than each's halves
# ... but a group of 2 or more embeddings with at least a second and a tenth of the speech whose print is
# below this similarity to every other group stands as a voice: someone with one short line (NeMo's AN4 clip:
# a voice of 2.0 s, two windows, at 0.42 to the other: counted as one voice before, DER 0.48 -> 0.04)
LIGHT_APART = 0.5
LIGHT_MIN_WINDOWS, LIGHT_MIN_SECONDS, LIGHT_MIN_SHARE = 2, 1.0, 0.1


def _print(x: np.ndarray, w: np.ndarray, idx: np.ndarray) -> np.ndarray:
    v = (x[idx] * w[idx, None]).sum(axis=0)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _self_similarity(x: np.ndarray, w: np.ndarray, idx: np.ndarray) -> float:
    """How alike two prints of the same group look: the first half of its windows (in time) against the
    second half. It measures, for this recording, this voice and this much speech, what "the same voice"
    looks like, drift over time included."""
    if len(idx) < 2:
        return 0.0
    h = len(idx) // 2
    return float(_print(x, w, idx[:h]) @ _print(x, w, idx[h:]))


def _short_voices(sims: np.ndarray, mass: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Groups too light by the rule above that still stand as voices: enough windows, speech and share, and a
    print unlike every other group's (``sims``: the groups' print similarities, -inf on the diagonal; a
    voice's own groups sit at 0.75 or more with this encoder)."""
    return ((count >= LIGHT_MIN_WINDOWS) & (mass >= LIGHT_MIN_SECONDS) & (mass >= LIGHT_MIN_SHARE * mass.sum())
            & (sims.max(axis=1) < LIGHT_APART))


def _merge_sequence(x: np.ndarray, c: np.ndarray, labels: np.ndarray, w: np.ndarray,
                    min_weight: float, lower: int) -> list[dict]:
    """Centroid linkage on voice prints, from the over-clustering down to ``lower`` clusters.

    A print is the weighted mean of a group's raw window embeddings (the statistic a cast enrollment uses).
    Groups with less than ``min_weight`` seconds of speech or fewer than ``MIN_SPEAKER_WINDOWS`` embeddings
    merge first (their print is too noisy to be a voice; :func:`_short_voices` are the exception), then the
    two groups with the most alike prints. Returns one record per state: the labels, whether
    every group is heavy enough to stand as a voice, and the merge that leaves the state (distance 1 - print
    similarity, and the two groups' self-similarities)."""
    states = []
    labels = _relabel_by_size(labels)
    while True:
        present = np.unique(labels)
        mass = np.array([w[labels == q].sum() for q in present])
        count = np.bincount(labels, minlength=len(present))
        # a group too light to stand as a voice: too little speech, or too few embeddings for a stable print
        light = (mass < min_weight) | (count < MIN_SPEAKER_WINDOWS)
        prints = centroids_of(x, labels, len(present), w)
        sims = prints @ prints.T
        np.fill_diagonal(sims, -np.inf)
        if light.any() and len(present) > 1:
            light &= ~_short_voices(sims, mass, count)
        state = {"labels": labels, "k": len(present), "heavy": not bool(light.any())}
        states.append(state)
        if len(present) <= lower:
            return states
        small = np.flatnonzero(light)
        if len(small):
            i = int(small[np.argmin(mass[small])])
            j = int(np.argmax(sims[i]))
        else:
            i, j = np.unravel_index(int(np.argmax(sims)), sims.shape)
        state["distance"] = 1.0 - float(sims[i, j])
        halves = (_self_similarity(x, w, np.flatnonzero(labels == i)),
                  _self_similarity(x, w, np.flatnonzero(labels == j)))
        state["self"], state["self_mean"] = min(halves), sum(halves) / 2
        state["pair_similarity"] = float(sims[i, j])
        merged = labels.copy()
        merged[merged == j] = i
        merged = _relabel_by_size(merged)
        # windows near the border of the merged pair may now sit closer to another group
        labels = _relabel_by_size(_refine(c, merged, int(merged.max()) + 1, w, 1))


def estimate_speaker_count(embeddings: np.ndarray, min_speakers: int = 1, max_speakers: int | None = None,
                           weights: np.ndarray | None = None, min_speaker_seconds: float = MIN_SPEAKER_SECONDS,
                           clear_jump: float = CLEAR_JUMP, self_margin: float = SELF_MARGIN, max_start: int = 10,
                           max_points: int = 2000) -> tuple[int, np.ndarray]:
    """How many voices, and the window labels that go with them.

    1. Over-cluster: average linkage on the *centred* embeddings (see :func:`cluster_embeddings`) cut at
       ``max_start`` clusters, refined by nearest-centroid passes.
    2. Merge groups pairwise by their voice prints (:func:`_merge_sequence`), recording how far apart each
       merge is. Only states where every group has ``min_speaker_seconds`` of speech can be the answer.
    3. The merges among groups of one voice have a typical distance; a merge at least ``clear_jump`` times
       the median distance of the merges of heavy groups before it, and at least ``clear_jump`` times the
       distance between the halves of the pair itself, joins two different voices. The state before the
       clearest such jump (the largest ratio) gives the count: a dendrogram-gap rule, free of an absolute
       scale, so it holds for voices far apart (LibriSpeech readers) and for a shared channel that pulls
       every print together.
    4. No clear jump (one voice, or two alike voices in one room): two groups are two voices when their prints
       are ``self_margin`` less alike than the halves of a group are to each other, on average over the two
       (each group's own self-similarity is the reference of "one voice" for this recording); else one voice.

    The count stays within ``min_speakers`` / ``max_speakers``.
    """
    x = _normalize(np.asarray(embeddings, dtype=np.float64))
    n = len(x)
    upper = n if max_speakers is None else max(1, min(max_speakers, n))
    lower = max(1, min(min_speakers, upper))
    if n <= 1:
        return min(n, upper), np.zeros(n, dtype=np.int64)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    c = _normalize(x - (x * w[:, None]).sum(axis=0) / max(w.sum(), 1e-12))
    start = max(lower, min(n, max_start if max_speakers is None else max(max_start, upper + 4)))
    labels = _agglomerate(c, start, 0.0, max_points) if start > 1 else np.zeros(n, dtype=np.int64)
    labels = _refine(c, labels, int(labels.max()) + 1, w, 3)
    states = _merge_sequence(x, c, labels, w, min_speaker_seconds, lower)
    heavy = [i for i, s in enumerate(states) if s["heavy"] and "distance" in s]
    candidates = [i for i in heavy if lower <= states[i]["k"] <= upper]
    best, best_ratio = None, 0.0
    for i in heavy:
        within = [states[j]["distance"] for j in heavy if j < i]
        # the typical distance of merges inside one voice: the median of the heavy merges before it, and
        # never less than the distance between the halves of the pair itself. Without that floor, two
        # unusually close first merges set the scale and any later merge inside an expressive voice looked
        # like a jump: a real 128 s interview of 3 people (shouting, laughter) came out as 8 voices, two
        # LibriSpeech readers (one through 3 microphones) as 3. The merges of light groups (a window or two:
        # noisy prints) are not part of it: they had set the scale of two real recordings of 4 and 6 clear
        # voices so high that no jump stood out (2 and 1 voices found)
        reference = max(float(np.median(within)) if within else 0.0, 1.0 - states[i]["self"])
        # the clearest jump, not the first: a merge inside one voice can pass 1.5x a scale set by a single
        # earlier merge (two espeak-ng voices, one through three microphones: 0.180 after 0.106), and the
        # merge of the two voices then stands out more (0.346, 2.4x)
        ratio = states[i]["distance"] / max(reference, 1e-3)
        if ratio >= clear_jump and ratio > best_ratio:
            # more voices than allowed: the bound; fewer than required: the lower bound
            inside = [j for j in candidates if states[j]["k"] <= states[i]["k"]] or candidates
            best, best_ratio = (inside[0] if inside else None), ratio
    if best is None:
        two = [i for i in candidates if states[i]["k"] == 2]
        # the mean of the two groups' self-similarities: the smaller alone (a short, mixed group's halves
        # differ a lot) left two real voices of a broadcast interview and a meeting as one
        if two and states[two[0]]["pair_similarity"] < states[two[0]]["self_mean"] - self_margin:
            best = two[0]
        else:
            best = len(states) - 1  # the fewest groups allowed (one voice unless min_speakers says more)
    labels = states[best]["labels"]
    return int(labels.max()) + 1, labels


MIXED_GAIN = 0.01  # cosine a window gains when two speakers' prints explain it instead of one


def mixed_windows(embeddings: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None,
                  min_gain: float = MIXED_GAIN) -> np.ndarray:
    """Windows that hold two voices (overlapped speech, or a change of speaker inside the window).

    A window of one voice sits near its speaker's print (the weighted mean of the speaker's raw window
    embeddings); a window where two voices mix lies *between* two prints: a non-negative combination of
    its two nearest prints explains it better (cosine to its projection on their plane, minus cosine to
    the nearest print, above ``min_gain``) than the nearest alone. Raw embeddings, not centred ones: with
    two speakers, centring puts their centroids nearly opposite, and the plane of two nearly opposite
    vectors fits any window's noise (half the windows of a clean two-voice espeak-ng dialogue came out
    mixed). On the corpus conversations the gain was at most 0.005 for 90 % of the windows of one
    reference speaker, and for windows of two: median 0.022 (libri4), 75th percentile 0.010 (espeak-ng
    similar voices), 90th percentile 0.013 (pyannote's sample): few false alarms, part of the overlap
    found. Returns a boolean per row; all False with fewer than two speakers."""
    labels = np.asarray(labels)
    n = len(labels)
    k = int(labels.max()) + 1 if n else 0
    if k < 2:
        return np.zeros(n, dtype=bool)
    x = _normalize(np.asarray(embeddings, dtype=np.float64))
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    prints = centroids_of(x, labels, k, w)
    sims = x @ prints.T
    order = np.argsort(-sims, axis=1)
    rows = np.arange(n)
    pa, pb = sims[rows, order[:, 0]], sims[rows, order[:, 1]]
    g = np.einsum("ij,ij->i", prints[order[:, 0]], prints[order[:, 1]])  # cosine between the two prints
    det = np.maximum(1.0 - g * g, 1e-9)
    ca, cb = (pa - g * pb) / det, (pb - g * pa) / det  # least-squares coefficients on the two prints
    projected = np.sqrt(np.maximum(pa * ca + pb * cb, 0.0))  # length of the projection (rows are unit)
    return (ca > 0) & (cb > 0) & (projected - pa > min_gain)


def cluster_embeddings(embeddings: np.ndarray, num_speakers: int | None = None, min_speakers: int = 1,
                       max_speakers: int | None = None, weights: np.ndarray | None = None,
                       min_speaker_seconds: float = MIN_SPEAKER_SECONDS,
                       max_points: int = 2000, refine_rounds: int = 3,
                       reliable: np.ndarray | None = None) -> np.ndarray:
    """Speaker label (0, 1, ... in order of first appearance) for each row of ``embeddings``.

    ``reliable`` (boolean per row, e.g. windows of at least 1 s) marks the embeddings the count and the
    clusters are built from, when there are enough of them (twice the count); the others (short blips,
    coughs: noisy vectors that would otherwise take a cluster of their own) then go to the nearest speaker.

    The count is ``num_speakers`` when given, else :func:`estimate_speaker_count` (``min_speakers`` /
    ``max_speakers`` bound the count; ``weights``, seconds of speech per window, decide which groups are too
    light to be a voice).

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
    centred = _normalize(x - (x * w[:, None]).sum(axis=0) / max(w.sum(), 1e-12))
    if num_speakers is not None:
        k = max(1, min(int(num_speakers), int(core.sum())))
        if k == 1:
            return np.zeros(n, dtype=np.int64)
        labels = _agglomerate(centred[core], k, 0.0, max_points)
    else:
        k, _ = estimate_speaker_count(x[core], min_speakers, max_speakers, w[core], min_speaker_seconds,
                                      max_points=max_points)
        if k == 1:
            return np.zeros(n, dtype=np.int64)
        # the estimate decides how many voices; the grouping into them is the one a given count gets (average
        # linkage on centred embeddings). The estimator's own groups come from merging voice prints one pair
        # at a time, which mixes up alike voices more (espeak-ng similar-voice scene: DER 0.285 -> 0.200)
        labels = _agglomerate(centred[core], k, 0.0, max_points)
    labels = _refine(centred[core], labels, k, w[core], refine_rounds)
    everyone = np.argmax(centred @ centroids_of(centred[core], labels, k, w[core]).T, axis=1)
    return _relabel_by_size(everyone)
