"""Fitting the unit codec to audio: k-means centroids (k-means++ seeding, Lloyd iterations) and
the ridge-regression context decoder.

Works on feature arrays the codec hands over (model/codecs/units/codec.py calls these from
`UnitCodec.fit` and `fit_decoder`); numpy, scipy.linalg and tqdm only. Seeded: same input, same
output. Knows nothing of audio files, bundles or the server.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.linalg

DISTANCE_CHUNK_FRAMES = 8192  # frames per distance block in k-means: (8192, K) float32 at a time


def cluster_means(stacked: np.ndarray, points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Log-mel centroids (K, D) of the k-means `centroids` (K, d) fitted on `points` (n, d):
    the mean stacked frame (n, D) of each cluster; a cluster no point falls in takes the frame
    nearest its centroid."""
    assignment, _ = _nearest(points, centroids)  # (n,)
    sizes = np.bincount(assignment, minlength=centroids.shape[0])  # (K,)
    sums = np.zeros((centroids.shape[0], stacked.shape[1]), dtype=np.float64)
    np.add.at(sums, assignment, stacked)
    means = (sums / np.maximum(sizes, 1)[:, None]).astype(np.float32)
    empty = np.flatnonzero(sizes == 0)
    if empty.size:
        nearest, _ = _nearest(np.ascontiguousarray(centroids[empty]), points)
        means[empty] = stacked[nearest]
    return means


def fit_kmeans(
    points: np.ndarray, clusters: int, *, seed: int, iterations: int, progress: bool
) -> np.ndarray:
    """K-means (k-means++ seeding, then Lloyd iterations) of (n, D) points → (clusters, D).

    A cluster left empty is moved onto the point worst served by its current centroid, so every
    unit stays in use. Stops early once no point changes cluster. Seeded: same input, same output.
    """
    from tqdm import tqdm

    points = np.ascontiguousarray(points, dtype=np.float32)  # (n, D)
    count = points.shape[0]
    if count < clusters:
        raise ValueError(
            f"k-means with {clusters} clusters needs at least {clusters} frames, got {count} "
            f"({count / 50:.1f} s of audio at 50 frames/s); fit on more audio or fewer units"
        )
    rng = np.random.default_rng(seed)
    centroids = _kmeans_plus_plus(points, clusters, rng)
    assignment = np.full(count, -1)
    bar = tqdm(range(iterations), desc="k-means", unit="iter", disable=not progress)
    for _ in bar:
        new_assignment, distance = _nearest(points, centroids)
        changed = int(np.count_nonzero(new_assignment != assignment))
        assignment = new_assignment
        sizes = np.bincount(assignment, minlength=clusters)  # (K,)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assignment, points)
        used = sizes > 0
        centroids[used] = sums[used] / sizes[used, None]
        empty = np.flatnonzero(~used)
        if empty.size:
            centroids[empty] = points[np.argsort(distance)[::-1][:empty.size]]
        bar.set_postfix(mse=f"{distance.mean() / points.shape[1]:.4f}", changed=changed)
        if changed == 0:
            break
    return centroids


def _kmeans_plus_plus(points: np.ndarray, clusters: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each next centroid drawn with probability ∝ squared distance."""
    centroids = np.empty((clusters, points.shape[1]), dtype=np.float32)
    centroids[0] = points[rng.integers(points.shape[0])]
    closest = ((points - centroids[0]) ** 2).sum(axis=1)  # (n,)
    for k in range(1, clusters):
        total = float(closest.sum())
        index = rng.choice(closest.size, p=closest / total) if total > 0 else rng.integers(
            closest.size)
        centroids[k] = points[index]
        np.minimum(closest, ((points - centroids[k]) ** 2).sum(axis=1), out=closest)
    return centroids


def _nearest(points: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and squared distance to the nearest centroid for each point: (n,), (n,)."""
    centroid_norms = (centroids**2).sum(axis=1)  # (K,)
    index = np.empty(points.shape[0], dtype=np.int64)
    distance = np.empty(points.shape[0], dtype=np.float32)
    for start in range(0, points.shape[0], DISTANCE_CHUNK_FRAMES):
        block = points[start:start + DISTANCE_CHUNK_FRAMES]  # (b, D)
        scores = centroid_norms[None, :] - 2.0 * (block @ centroids.T)  # (b, K)
        best = scores.argmin(axis=1)
        index[start:start + block.shape[0]] = best
        point_norms = (block**2).sum(axis=1)
        distance[start:start + block.shape[0]] = np.maximum(
            scores[np.arange(block.shape[0]), best] + point_norms, 0.0)
    return index, distance


def fit_context_decoder(
    clips: Iterable[tuple[np.ndarray, np.ndarray]],
    frame_centroids: np.ndarray,
    *,
    context: int,
    ridge: float,
) -> np.ndarray:
    """Ridge regression of each frame's true log-mel minus its unit's centroid on one-hot codes
    of the units `context` frames either side.

    clips: (log-mel frames (N, M), their units (N,)) per clip. frame_centroids: (K, M), what each
    unit decodes to. Returns the decoder table, float32 (2c + 1, K + 1, M) (row K: past either
    end). The ridge pulls rows of units the clips never use to zero.
    """
    vocab_size, mels = frame_centroids.shape
    width, rows = 2 * context + 1, vocab_size + 1
    gram = np.zeros((width * rows, width * rows))  # (W·R, W·R): X^T X
    moments = np.zeros((width * rows, mels))  # (W·R, M): X^T Y
    for frames, units in clips:
        residual = frames - frame_centroids[units]  # (N, M)
        active = neighbour_rows(units, context, vocab_size)  # (N, W): one-hot columns
        for d in range(width):
            np.add.at(moments, active[:, d], residual)
            for e in range(width):
                np.add.at(gram, (active[:, d], active[:, e]), 1.0)
    gram[np.diag_indices_from(gram)] += ridge
    table = scipy.linalg.solve(gram, moments, assume_a="pos")  # (W·R, M)
    return table.reshape(width, rows, mels).astype(np.float32)


def neighbour_rows(units: np.ndarray, context: int, vocab_size: int) -> np.ndarray:
    """int units (N,) → (N, 2c + 1) rows of a flattened (2c + 1, K + 1) table: column d holds
    d·(K + 1) + the unit d - c frames away, or + K past either end."""
    padded = np.concatenate([np.full(context, vocab_size), units, np.full(context, vocab_size)])
    width, count = 2 * context + 1, units.size
    return np.stack([d * (vocab_size + 1) + padded[d : d + count] for d in range(width)], axis=1)
