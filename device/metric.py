"""A sharper nearest-centroid head with an "unknown" that calibrates itself (pure numpy, no I/O).

:func:`fit` turns the stored examples (raw embeddings, their classes, optionally their
bursts) into an immutable :class:`Fit`.  A fit is a pure,
deterministic function of its inputs (the order of the examples does not matter), so
it can run on any thread and be shared by all.  :func:`fit_cosine` (the live head's
maths) and :func:`fit_neighbours` (k = 3 nearest neighbours) are the baselines, with the
same ``predict`` / ``assess`` / ``scores``.

The metric (issue 10)::

    z    = l2(sqrt(x) - sqrt(mean))                  features, centred, unit length
    mu_c = mean of class c's z                        centroids
    S    = (1 - a) S_w / (n - C) + a nu I             one within-class covariance shared by all
                                                      classes, shrunk towards nu I (nu: the mean
                                                      residual variance), a = 0.3
    P    = S^-1
    answer  = argmax_c  cos_P(z, mu_c),   cos_P(z, mu) = z'P mu / sqrt(z'P z  mu'P mu)

i.e. nearest centroid by cosine under the shared metric.  With one example per class
there is no residual, ``S`` is a multiple of ``I`` and this is cosine nearest centroid
of the centred features.  (The linear discriminant ``z'P mu_c - mu_c'P mu_c / 2`` picks
the same classes when every class has the same number of examples; with unequal
numbers it favours the classes of many, spread-out examples, whose centroids lie nearer
the middle: a class taught one view beside classes taught ten gets 57% / 70% / 88% of
its queries right by the cosine, 12% / 15% / 44% by the discriminant, on hands-dev /
coil-clutter / coil-scene; with equal numbers the two agree to 0.5 points.)
For ``n < D`` everything goes through the ``n x n`` system (Woodbury), else through the
``D x D`` one; both give the same numbers.

"Unknown": the novelty of a frame is its ``cos_P`` to the answer's centroid; a *gate* on
the cosine of the uncentred features to the class's uncentred centroid catches what
centring hides (a black frame, a bare wall).  Thresholds come from the examples:

- *genuine* scores: sampled examples against their class fitted without them and
  their group (leave-one-group-out, with the exact Sherman-Morrison downdate of the
  shared covariance for the group's mean residual: without it the metric has memorised
  every example and the scores read ~0.99).  An example's group is its near-duplicates
  (:data:`NEAR_DUPLICATE`) and, within its burst, every frame about as close to it as
  the closest one (within :data:`BURST_SAME`): a hold of a still thing, whose frames
  differ by camera noise alone, is one view and cannot make its class demand
  near-identical frames, while a hold of a thing being turned is as many views as it
  showed (a whole burst as one group made the box name every stranger when each class
  was taught in one hold: 100% of never-taught COIL-100 objects named, 30% now);
- *impostor* scores: sampled examples against the other classes, their own class left
  out (leave-one-class-out; when the mean is the examples' own, also out of the
  centring): an untaught thing seen by the box.  This needs three taught classes (with
  two, each is the other's opposite in the centred space);
- both are mixed with a prior (pseudo-examples at values measured on the dev data), so
  one class taught, a class of one view, or a burst still gets a sane threshold;
- ``sensitivity`` (0..1) weighs a wrongly named untaught thing against a taught thing
  wrongly called unknown: the threshold minimises ``(1-s) P(genuine below) + s P(impostor
  above)`` under normal fits of the two.  Until a class has a few distinct views (see
  :data:`MIN_VIEWS`) it gets only part of the sensitivity: with one view the box cannot
  tell another side of the thing from something else, so it answers and lets the gate
  catch the obvious.

Confidence: a softmax of ``cos_P`` at a temperature fitted to the same leave-one-group-out
cosines (never to anything asked later), with a prior on the temperature for when there
are few of them, gives the probabilities of the taught classes given that the frame
shows one of them.  They are multiplied by the probability that it shows a taught thing
at all: genuine against impostor novelty of the answer's class, from the same fits as
its threshold (the impostors as a Student t of :data:`IMPOSTOR_TAIL` degrees of freedom:
a stranger can land far from the others), at even odds, and never more than ``v / (v +
DOUBT_VIEWS)`` for a class of ``v`` distinct views (one view: 90%).  So a confident
answer is one that is both clearly this class rather than another and clearly not
something untaught: the open set is
calibrated too, not only the choice between taught classes (of the answers given with
confidence >= 0.9, over 90% are right, counting every answer given to a thing never
taught as wrong).  "Unknown" is decided apart, by the thresholds.  With one class taught
there is nothing to choose between and only the second factor is left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .head import MAX_CLASSES, STATUS_EMPTY, STATUS_OK, STATUS_UNKNOWN, Prediction

DEFAULT_SHRINKAGE = 0.3
DEFAULT_SENSITIVITY = 0.5
NEAR_DUPLICATE = 0.95  # centred cosine at which two examples count as one view (camera noise alone: ~0.8-0.9)
BURST_SAME = 0.05  # ... and within a hold, what is within this of the frame closest to it (noise alone)
LOO_PER_CLASS = 24  # examples per class the thresholds and temperature are estimated from (evenly spread)
# priors: (mean, spread, weight in pseudo-examples) of the scores, from the dev data
GENUINE_PRIOR = (0.40, 0.20, 3.0)  # novelty of a new view of a taught thing
IMPOSTOR_PRIOR = (0.12, 0.10, 3.0)  # novelty of an untaught thing (used with one or two classes taught)
PLAIN_PRIOR = (0.88, 0.05, 3.0)  # uncentred cosine of a new view of a taught thing
GATE_MAX = 0.6  # the gate never asks for more uncentred cosine than this ...
GATE_SIGMAS = 4.0  # ... nor more than this many spreads under the class's own typical value
TEMPERATURE_PRIOR = (0.10, 0.7, 4.0)  # softmax temperature (cosine units), spread of its log, weight
IMPOSTOR_TAIL = 3.0  # impostor novelty as a Student t of this many degrees of freedom: strangers have heavy tails
DOUBT_VIEWS = 1 / 9  # one view: at most 90% sure (new views of a thing seen once: 84-97% right at >= 0.9)
MIN_VIEWS = 4.0  # distinct leave-out views a class needs before its threshold gets the full sensitivity
LOW_TRUST = 0.25  # share of the sensitivity a class gets before that (with one view: "unknown" only when obvious)
_EPS = 1e-12


def features(vectors) -> np.ndarray:
    """The head's features of raw embeddings: the element-wise (signed) square root, float64."""
    v = np.asarray(vectors, dtype=np.float64)
    return np.copysign(np.sqrt(np.abs(v)), v)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > _EPS, norms, 1.0)


def _readonly(*arrays):
    for a in arrays:
        if isinstance(a, np.ndarray):
            a.flags.writeable = False


@dataclass(frozen=True, eq=False)
class Assessment:
    """What a fit thinks of a batch of embeddings (one row each).

    ``class_ids``: the answer, -1 when unknown (or nothing taught); ``best``: the taught
    class with the highest score, unknown or not (-1 when nothing is taught);
    ``confidence``: probability of ``best``; ``novelty``: the score compared with the
    threshold (higher = more like ``best``; the baselines' own similarity);
    ``probabilities``: (m, C), 0 for untaught classes.
    """

    class_ids: np.ndarray
    best: np.ndarray
    confidence: np.ndarray
    novelty: np.ndarray
    probabilities: np.ndarray


def _prediction_from(assessment: Assessment, scores_row: np.ndarray, taught: np.ndarray) -> Prediction:
    probabilities = assessment.probabilities[0].astype(np.float32)
    scores = np.where(taught, scores_row, np.nan).astype(np.float32)
    if not taught.any():
        return Prediction(STATUS_EMPTY, None, 0.0, scores, probabilities)
    answer = int(assessment.class_ids[0])
    if answer < 0:
        return Prediction(STATUS_UNKNOWN, None, 0.0, scores, probabilities)
    return Prediction(STATUS_OK, answer, float(probabilities[answer]), scores, probabilities)


# -- input checks ---------------------------------------------------------------------
def _check_vectors(vectors) -> np.ndarray:
    v = np.asarray(vectors)
    if v.ndim != 2:
        raise ValueError(f"vectors must be a 2-D array (examples x features), not shape {v.shape}")
    if not np.issubdtype(v.dtype, np.number) or np.issubdtype(v.dtype, np.complexfloating):
        raise ValueError(f"vectors must be real numbers, not {v.dtype}")
    if v.shape[1] < 1:
        raise ValueError("vectors have no features")
    if not np.isfinite(v).all():
        raise ValueError("vectors contain NaN or infinity")
    return v


def _check_labels(labels, n: int, num_classes: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"labels must be one class per vector ({n}), not shape {y.shape}")
    if n and not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(y == np.round(y)):
            raise ValueError(f"labels must be whole class numbers, not {y.dtype}")
    y = y.astype(np.int64)
    if n and (y.min() < 0 or y.max() >= num_classes):
        bad = int(y.min() if y.min() < 0 else y.max())
        raise ValueError(f"labels must be classes 0 to {num_classes - 1}; found {bad}")
    return y


def _check_num_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes must be a whole number from 1 to {MAX_CLASSES}, not {num_classes!r}")
    return int(num_classes)


def _check_fraction(name: str, value, low_open: bool) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None
    ok = (0.0 < x <= 1.0) if low_open else (0.0 <= x <= 1.0)
    if not ok:
        raise ValueError(f"{name} must be {'> 0' if low_open else '>= 0'} and <= 1, not {value!r}")
    return x


def _check_queries(embeddings, dim: int) -> np.ndarray:
    q = np.asarray(embeddings)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"embeddings must have {dim} values each, not shape {np.shape(embeddings)}")
    if not np.issubdtype(q.dtype, np.number):
        raise ValueError(f"embeddings must be numbers, not {q.dtype}")
    if not np.isfinite(q).all():
        raise ValueError("embeddings contain NaN or infinity")
    return q


def _check_embedding(embedding, dim: int) -> np.ndarray:
    e = np.asarray(embedding)
    if e.size != dim:
        raise ValueError(f"embedding has {e.size} values, this fit expects {dim}")
    e = e.reshape(1, dim)
    if not np.issubdtype(e.dtype, np.number) or not np.isfinite(e).all():
        raise ValueError("embedding contains NaN or infinity (or is not numbers)")
    return e


# -- the shared metric ----------------------------------------------------------------
class _Metric:
    """``P = S^-1`` of the shrunk shared covariance ``S = a R'R + b I``, never formed when n < D.

    ``R`` are the residuals (unit features minus their class centroid), ``a = (1 - alpha)
    / dof`` and ``b = alpha * nu``.  ``kind``: ``"isotropic"`` (no residual: ``S = b I``),
    ``"woodbury"`` (``P v = (v - B'B v) / b`` with ``B = L^-1 R``, ``L L' = (b/a) I + R R'``,
    the n x n system) or ``"full"`` (``P = L^-T L^-1`` with ``L L' = S``, the D x D one).
    """

    def __init__(self, kind: str, dim: int, dof: int, total: float, shrinkage: float,
                 residuals: Optional[np.ndarray] = None, scatter: Optional[np.ndarray] = None) -> None:
        self.nu = total / (dof * dim) if dof > 0 else 0.0
        self.B = self.inv_lower = None
        if kind == "isotropic" or self.nu <= _EPS or shrinkage >= 1.0:
            self.kind, self.a, self.b = "isotropic", 0.0, (self.nu if self.nu > _EPS else 1.0)
            return
        self.kind = kind
        self.a = (1.0 - shrinkage) / dof
        self.b = shrinkage * self.nu
        if kind == "woodbury":
            gram = residuals @ residuals.T
            gram[np.diag_indices_from(gram)] += self.b / self.a
            self.B = np.linalg.solve(np.linalg.cholesky(gram), residuals)
        else:
            sigma = scatter  # the caller's, scaled in place (it is not used again)
            sigma *= self.a
            sigma[np.diag_indices_from(sigma)] += self.b
            self.inv_lower = np.linalg.solve(np.linalg.cholesky(sigma), np.eye(dim))
        _readonly(self.B, self.inv_lower)

    def apply(self, v: np.ndarray) -> np.ndarray:
        """``P @ v`` for ``v`` of shape (D, k)."""
        if self.kind == "isotropic":
            return v / self.b
        if self.kind == "woodbury":
            return (v - self.B.T @ (self.B @ v)) / self.b
        return self.inv_lower.T @ (self.inv_lower @ v)

    def quad(self, rows: np.ndarray) -> np.ndarray:
        """``diag(rows P rows')``."""
        if self.kind == "isotropic":
            return np.einsum("ij,ij->i", rows, rows) / self.b
        if self.kind == "woodbury":
            br = rows @ self.B.T
            return (np.einsum("ij,ij->i", rows, rows) - np.einsum("ij,ij->i", br, br)) / self.b
        wr = rows @ self.inv_lower.T
        return np.einsum("ij,ij->i", wr, wr)


def _normal_cdf(x):
    return 0.5 * (1.0 + np.vectorize(math.erf)(np.asarray(x) / math.sqrt(2.0)))


def _blend(values: np.ndarray, weights: np.ndarray, prior) -> tuple:
    """Mean and spread of weighted ``values`` mixed with ``prior`` = (mean, spread, pseudo-count)."""
    mean0, spread0, n0 = prior
    w = float(weights.sum())
    total = w + n0
    mean = (float(weights @ values) + n0 * mean0) / total
    second = (float(weights @ (values - mean) ** 2) + n0 * (spread0 ** 2 + (mean0 - mean) ** 2)) / total
    return mean, math.sqrt(max(second, 1e-6))


def _threshold(genuine: tuple, impostor: tuple, sensitivity: float) -> float:
    """The score minimising ``(1-s) P(genuine < t) + s P(impostor >= t)`` under normal fits."""
    (mg, sg), (mh, sh) = genuine, impostor
    grid = np.linspace(-1.0, 1.0, 401)
    cost = (1 - sensitivity) * _normal_cdf((grid - mg) / sg) + sensitivity * (1 - _normal_cdf((grid - mh) / sh))
    return float(grid[int(np.argmin(cost))])


def _fit_temperature(cosines: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> float:
    """Softmax temperature minimising the weighted leave-out NLL plus a prior on log T (log grid, then finer)."""
    t0, log_spread, n0 = TEMPERATURE_PRIOR
    rows = np.arange(len(truth))
    own = cosines[rows, truth]
    top = cosines.max(axis=1)

    def cost(log_t: float) -> float:
        t = math.exp(log_t)
        nll = 0.0
        if len(truth):
            log_norm = np.log(np.exp((cosines - top[:, None]) / t).sum(axis=1))  # untaught: exp(-inf) = 0
            nll = float(weights @ (log_norm - (own - top) / t))
        return nll + n0 * (log_t - math.log(t0)) ** 2 / (2 * log_spread ** 2)

    coarse = np.linspace(math.log(3e-3), math.log(3.0), 36)
    best = min(coarse, key=cost)
    step = coarse[1] - coarse[0]
    return math.exp(min(np.linspace(best - step, best + step, 21), key=cost))


@dataclass(frozen=True, eq=False)
class Fit:
    """The shared-metric head fitted to a set of examples; immutable and safe to share between threads.

    ``counts[c]`` examples per class; a class without examples is never answered.
    ``thresholds[c]`` / ``gates[c]``: novelty / uncentred cosine under which a frame
    answered ``c`` is "unknown" (-inf: none); ``temperature``: of the softmax over the
    cosines under the metric; ``solver``: ``"isotropic"`` (no residual: one example
    per class), ``"woodbury"`` (n < D) or ``"full"``; ``views[c]``: how many distinct
    views class ``c``'s examples are (of at most LOO_PER_CLASS sampled); a class of
    ``v`` views is at most ``v / (v + DOUBT_VIEWS)`` sure that a frame shows it.
    """

    num_classes: int
    dim: int
    counts: np.ndarray
    shrinkage: float
    sensitivity: float
    temperature: float
    thresholds: np.ndarray
    gates: np.ndarray
    solver: str
    views: np.ndarray  # (C,) distinct views per class (a hold of one view, or near-duplicates, count once)
    _mean: np.ndarray = field(repr=False)  # (D,) centre of the features
    _directions: np.ndarray = field(repr=False)  # (D, C) P mu_c / |mu_c|_P (0 for untaught)
    _plain: np.ndarray = field(repr=False)  # (C, D) unit centroids of the uncentred features
    _metric: _Metric = field(repr=False)
    _known: np.ndarray = field(repr=False)  # (C, 4) per class (mg, sg, mh, sh) of the novelty fits, NaN: none
    _ceiling: np.ndarray = field(repr=False)  # (C,) views / (views + DOUBT_VIEWS): the most a class can be sure

    @property
    def taught(self) -> np.ndarray:
        return self.counts > 0

    def _cosines(self, q: np.ndarray):
        """(features, cosines under the metric (m, C), -inf for untaught)."""
        f = features(q)
        z = _unit_rows(f - self._mean)
        qq = self._metric.quad(z)
        cos = (z @ self._directions) / np.sqrt(np.maximum(qq, _EPS))[:, None]
        cos[:, ~self.taught] = -np.inf
        return f, cos

    def scores(self, embeddings) -> np.ndarray:
        """(m, C) cosines to the centroids under the metric (-inf for untaught classes); argmax is the answer."""
        return self._cosines(_check_queries(embeddings, self.dim))[1]

    def assess(self, embeddings) -> Assessment:
        return self._assess(_check_queries(embeddings, self.dim))[0]

    def _assess(self, q: np.ndarray):
        m = len(q)
        taught = self.taught
        f, cos = self._cosines(q)
        probabilities = np.zeros((m, self.num_classes))
        if not taught.any():
            none = np.full(m, -1)
            return Assessment(none, none, np.zeros(m), np.full(m, np.nan), probabilities), cos
        best = np.argmax(cos, axis=1)
        rows = np.arange(m)
        logits = cos[:, taught] / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        probabilities[:, taught] = e / e.sum(axis=1, keepdims=True)
        novelty = cos[rows, best]
        # which taught class, times how likely the frame shows a taught class at all
        probabilities *= np.minimum(_known_probability(novelty, self._known[best]), self._ceiling[best])[:, None]
        plain = np.einsum("ij,ij->i", _unit_rows(f), self._plain[best])
        blank = np.linalg.norm(f, axis=1) <= _EPS
        known = (novelty >= self.thresholds[best]) & (plain >= self.gates[best]) & ~blank
        answer = Assessment(np.where(known, best, -1), best, probabilities[rows, best], novelty, probabilities)
        return answer, cos

    def predict(self, embedding) -> Prediction:
        """One frame's answer: status OK (a taught class), UNKNOWN, or EMPTY (nothing taught).

        ``scores`` holds the cosine under the metric to every taught class (NaN for the
        others); ``probabilities`` add up to the probability that the frame shows a taught
        thing at all (with one class taught and no mean given, 0.5: it cannot tell).
        """
        assessment, cos = self._assess(_check_embedding(embedding, self.dim))
        return _prediction_from(assessment, cos[0], self.taught)


def _known_probability(novelty: np.ndarray, known: np.ndarray) -> np.ndarray:
    """P(a taught thing | novelty): genuine (normal) against impostor (Student t) novelty fits (m, 4), even odds.

    Monotone in the novelty: a frame less like the class than the impostors' mean counts as
    that strange, one more like it than the genuine mean as that genuine (so neither fit's
    tail can win back).  Rows of NaN (no fit) give 0.5.
    """
    mg, sg, mh, sh = known.T
    nu = IMPOSTOR_TAIL
    xh = np.maximum(novelty, mh)  # less like the class than a typical stranger: as strange as one
    xg = np.minimum(novelty, mg)  # more like it than a typical new view: as genuine as one
    impostor = -0.5 * (nu + 1) * np.log1p(((xh - mh) / sh) ** 2 / nu) - np.log(sh)
    log_ratio = impostor - (-0.5 * ((xg - mg) / sg) ** 2 - np.log(sg))
    p = 1.0 / (1.0 + np.exp(np.clip(log_ratio, -50.0, 50.0)))
    return np.where(np.isnan(p), 0.5, p)


def fit(vectors, labels, num_classes: int, *, mean=None, bursts=None, shrinkage: float = DEFAULT_SHRINKAGE,
        sensitivity: float = DEFAULT_SENSITIVITY, solver: Optional[str] = None) -> Fit:
    """Fit the shared-metric head to examples (deterministic: the same input gives the same fit).

    :param vectors: (n, D) raw embeddings (as the embedder returns them, non-negative).
    :param labels: (n,) class of each, 0 to ``num_classes - 1``.
    :param num_classes: class slots; slots without examples are never answered.
    :param mean: (D,) a centre of raw embeddings to use instead of ``None``, the mean of
        the class means of the examples (with one class taught: no centring), which the
        box uses: with it the impostors leave the centring too, as a real stranger does.
    :param bursts: (n,) optional burst of each example (the library's ``burst`` ids):
        frames of one burst about as close to an example as its closest one are left out
        with it when the thresholds are estimated, so a hold of a still thing counts as
        one view even when camera noise makes its frames differ.
    :param shrinkage: weight ``a`` of the scaled identity in the covariance, in (0, 1].
    :param sensitivity: 0..1, how readily "unknown" is answered (0.5: balanced).
    :param solver: ``None`` (Woodbury when n < D, else D x D), ``"woodbury"`` or ``"full"``.
    """
    num_classes = _check_num_classes(num_classes)
    x = _check_vectors(vectors)
    n, dim = x.shape
    y = _check_labels(labels, n, num_classes)
    if bursts is not None:
        bursts = np.asarray(bursts)
        if bursts.shape != (n,) or (n and not np.issubdtype(bursts.dtype, np.integer)):
            raise ValueError(f"bursts must be one whole number per vector ({n}), not {bursts.dtype} of shape "
                             f"{bursts.shape}")
    shrinkage = _check_fraction("shrinkage", shrinkage, low_open=True)
    sensitivity = _check_fraction("sensitivity", sensitivity, low_open=False)
    if solver not in (None, "woodbury", "full"):
        raise ValueError(f"solver must be 'woodbury', 'full' or None, not {solver!r}")
    # one canonical order (by class, then by content): the fit does not depend on the order of the examples
    order = np.lexsort(tuple(np.sum(x[:, start::step], axis=1, dtype=np.float64)
                             for start, step in ((3, 13), (1, 7), (0, 1))) + (y,))
    y = y[order]
    if bursts is not None:
        bursts = bursts[order]
    f = np.asarray(x[order], dtype=np.float32)  # (n, D) float32 features: the one big array
    negative = np.signbit(f)
    np.abs(f, out=f)
    np.sqrt(f, out=f)
    np.negative(f, out=f, where=negative)
    del negative
    squares = np.einsum("ij,ij->i", f, f, dtype=np.float64)
    if n and squares.min() <= _EPS:
        raise ValueError(f"vectors has an all-zero row ({int(np.argmin(squares))}): nothing to learn from it")
    counts = np.bincount(y, minlength=num_classes).astype(np.int64)
    taught = counts > 0
    taught_ids = np.flatnonzero(taught)
    members = {int(c): np.flatnonzero(y == c) for c in taught_ids}
    class_feature_means = np.zeros((num_classes, dim))
    for c, rows in members.items():
        class_feature_means[c] = f[rows].mean(axis=0, dtype=np.float64)
    external = mean is not None
    if external:
        m = np.asarray(mean)
        if m.size != dim:
            raise ValueError(f"mean has {m.size} values, the vectors have {dim}")
        if not np.issubdtype(m.dtype, np.number) or not np.isfinite(m).all():
            raise ValueError("mean contains NaN or infinity (or is not numbers)")
        centre = features(m.reshape(dim))
    elif len(taught_ids) >= 2:
        centre = class_feature_means[taught_ids].mean(axis=0)
    else:
        centre = np.zeros(dim)

    dof = n - len(taught_ids)
    kind = "isotropic" if dof <= 0 else (solver or ("woodbury" if n < dim else "full"))
    centroids = np.zeros((num_classes, dim))
    plain_sums = np.zeros((num_classes, dim))
    residual_rows = []
    scatter = np.zeros((dim, dim)) if kind == "full" else None
    total = 0.0
    sample = _Sample(sum(min(len(r), LOO_PER_CLASS) for r in members.values()), dim)
    centre32 = centre.astype(np.float32)
    for c, rows in members.items():  # one class at a time: no n x D temporaries
        fc = f[rows]
        zc = _unit_rows(fc - centre32)
        uc = _unit_rows(fc)
        centroids[c] = zc.mean(axis=0, dtype=np.float64)
        plain_sums[c] = uc.sum(axis=0, dtype=np.float64)
        rc = zc - centroids[c].astype(np.float32)
        total += float(np.einsum("ij,ij->", rc, rc, dtype=np.float64))
        if kind == "woodbury":
            residual_rows.append(rc.astype(np.float64))
        elif kind == "full":
            scatter += (rc.T @ rc).astype(np.float64)
        sample.add(c, rows, zc, uc, None if bursts is None else bursts[rows])
    metric = _Metric(kind, dim, dof, total, shrinkage,
                     residuals=np.concatenate(residual_rows) if residual_rows else None, scatter=scatter)
    del residual_rows, scatter
    weights = metric.apply(centroids.T)  # P mu_c
    mm = np.einsum("cd,dc->c", centroids, weights)  # mu_c' P mu_c
    directions = np.where(taught & (mm > _EPS), 1.0, 0.0) * weights / np.sqrt(np.maximum(mm, _EPS))

    thresholds = np.full(num_classes, -np.inf)
    gates = np.full(num_classes, -np.inf)
    temperature = TEMPERATURE_PRIOR[0]
    known = np.full((num_classes, 4), np.nan)
    views = np.zeros(num_classes)
    if n:
        stats = _leave_out_statistics(sample, counts, centroids, plain_sums, weights, mm, metric)
        impostor, impostor_class = _impostors(sample, f, squares, y, members, counts, centroids, weights, mm,
                                              metric, class_feature_means, external)
        temperature = _fit_temperature(stats["cosines"], stats["truth"], stats["weights"])
        pooled = _blend(impostor, np.ones(len(impostor)), IMPOSTOR_PRIOR)
        np.add.at(views, sample.label[:sample.filled], sample.weight[:sample.filled])
        for c in taught_ids:
            own = stats["truth"] == c
            plain_genuine = _blend(stats["plain"][own], stats["weights"][own], PLAIN_PRIOR)
            gates[c] = min(GATE_MAX, plain_genuine[0] - GATE_SIGMAS * plain_genuine[1])
            if not external and len(taught_ids) < 2:
                continue  # uncentred features: only the gate can tell
            genuine = _blend(stats["genuine"][own], stats["weights"][own], GENUINE_PRIOR)
            landed = impostor_class == c
            near = _blend(impostor[landed], np.ones(int(landed.sum())), (pooled[0], pooled[1], IMPOSTOR_PRIOR[2]))
            trust = min(1.0, float(stats["weights"][own].sum()) / MIN_VIEWS)
            thresholds[c] = _threshold(genuine, near, sensitivity * (LOW_TRUST + (1 - LOW_TRUST) * trust))
            known[c] = (*genuine, *near)
    plain = _unit_rows(plain_sums)
    ceiling = views / (views + DOUBT_VIEWS)
    _readonly(counts, thresholds, gates, views, centre, directions, plain, known, ceiling)
    return Fit(num_classes, dim, counts, shrinkage, sensitivity, float(temperature), thresholds, gates,
               metric.kind, views, centre, directions, plain, metric, known, ceiling)


class _Sample:
    """The examples the thresholds and temperature are estimated from, with their leave-out groups.

    Up to LOO_PER_CLASS per class, evenly spread over the class's examples.  An
    example's group is itself, its burst and every example of its class at least
    NEAR_DUPLICATE similar (centred cosine): they are left out together.
    """

    def __init__(self, size: int, dim: int) -> None:
        self.index = np.zeros(size, dtype=np.int64)
        self.label = np.zeros(size, dtype=np.int64)
        self.z = np.zeros((size, dim))
        self.u = np.zeros((size, dim))
        self.group_z = np.zeros((size, dim))  # sums over the group
        self.group_u = np.zeros((size, dim))
        self.size = np.zeros(size)
        self.weight = np.zeros(size)  # 1 / (sampled members of the group): a group counts once
        self.filled = 0

    def add(self, c: int, rows: np.ndarray, zc: np.ndarray, uc: np.ndarray, bursts: Optional[np.ndarray]) -> None:
        picked = np.arange(len(rows))
        if len(rows) > LOO_PER_CLASS:
            picked = np.linspace(0, len(rows) - 1, LOO_PER_CLASS).round().astype(np.int64)
        similarity = zc[picked] @ zc.T
        near = similarity >= NEAR_DUPLICATE
        near[np.arange(len(picked)), picked] = True
        if bursts is not None:  # within a hold, what camera noise alone could have made is the same view
            same = bursts[picked][:, None] == bursts[None, :]
            same[np.arange(len(picked)), picked] = False
            closest = np.where(same, similarity, -np.inf).max(axis=1, keepdims=True)
            near |= same & (similarity >= closest - BURST_SAME)
        span = slice(self.filled, self.filled + len(picked))
        self.index[span] = rows[picked]
        self.label[span] = c
        self.z[span] = zc[picked]
        self.u[span] = uc[picked]
        weights = near.astype(np.float32)
        self.group_z[span] = weights @ zc
        self.group_u[span] = weights @ uc
        self.size[span] = near.sum(axis=1)
        self.weight[span] = 1.0 / near[:, picked].sum(axis=1)
        self.filled += len(picked)


def _leave_out_statistics(sample: _Sample, counts, centroids, plain_sums, weights, mm, metric) -> dict:
    """Leave-one-group-out cosines of the sampled examples (for the genuine side and the temperature).

    Exact for the centroid; the shared covariance loses its rank-one share of the
    group's mean residual (Sherman-Morrison), the rest of it and the centre stay.
    """
    taught = counts > 0
    yi = sample.label
    k = len(yi)
    nc = counts[yi].astype(np.float64)
    sizes = sample.size
    usable = sizes < nc  # a group that is the whole class says nothing about new views
    zi = sample.z
    e = sample.group_z / np.maximum(sizes, 1)[:, None]  # the group's mean
    ar = np.arange(k)
    G = zi @ weights  # <z, mu_k> under P
    Ge = e @ weights  # <e, mu_k>
    H = centroids @ weights  # <mu_j, mu_k>
    pz = metric.apply(zi.T).T
    qq = np.einsum("ij,ij->i", pz, zi)  # <z, z>
    ze = np.einsum("ij,ij->i", pz, e)  # <z, e>
    ee = metric.quad(e)  # <e, e>
    # r = e - mu_y: leaving the group out takes kappa r r' out of the scatter, moves mu_y by -delta r
    zr = ze - G[ar, yi]
    rmu = Ge - H[yi]
    rr = ee - 2 * Ge[ar, yi] + mm[yi]
    kappa = np.where(usable, sizes * nc / np.maximum(nc - sizes, 1), 0.0)
    a = metric.a * kappa
    beta = a / np.maximum(1 - a * rr, _EPS)  # <u, v>' = <u, v> + beta <u, r> <r, v>
    Gp = G + (beta * zr)[:, None] * rmu
    qqp = qq + beta * zr * zr
    mmp = mm[None, :] + beta[:, None] * rmu * rmu
    delta = np.where(usable, sizes / np.maximum(nc - sizes, 1), 0.0)
    Gp[ar, yi] -= delta * (zr + beta * zr * rr)
    mu_r = rmu[ar, yi] * (1 + beta * rr)
    mmp[ar, yi] += -2 * delta * mu_r + delta ** 2 * (rr + beta * rr * rr)
    cosines = np.where(taught[None, :], Gp / np.sqrt(np.maximum(qqp[:, None] * mmp, _EPS)), -np.inf)
    plain_left = _unit_rows(plain_sums[yi] - sample.group_u)
    return {
        "truth": yi[usable], "weights": sample.weight[usable], "cosines": cosines[usable],
        "genuine": cosines[ar, yi][usable], "plain": np.einsum("ij,ij->i", sample.u, plain_left)[usable],
    }


def _impostors(sample: _Sample, f, squares, y, members, counts, centroids, weights, mm, metric,
               class_feature_means, external):
    """Leave-one-class-out: each sampled example's best cosine among the *other* classes, and which.

    With the examples' own mean, the left-out class also leaves the centring (its
    centroids under the other centre come from row norms and weighted sums of the
    features, without an n x D temporary).  Needs three taught classes.
    """
    taught = counts > 0
    ids = np.flatnonzero(taught)
    if len(ids) < 3:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    scores, landed = [], []
    if not external:
        centres = np.stack([class_feature_means[np.setdiff1d(ids, [j])].mean(axis=0) for j in ids])  # (J, D)
        dots = (f @ centres.T.astype(np.float32)).astype(np.float64)  # (n, J)
        inv = 1.0 / np.sqrt(np.maximum(squares[:, None] - 2 * dots + np.sum(centres ** 2, axis=1)[None, :], _EPS))
        moved = np.zeros((len(ids), len(counts), f.shape[1]))  # centroids of every class under every centre
        for c, rows in members.items():
            moved[:, c, :] = ((inv[rows].T.astype(np.float32) @ f[rows]).astype(np.float64)
                              - inv[rows].sum(axis=0)[:, None] * centres) / len(rows)
    for jpos, j in enumerate(ids):
        rows = np.flatnonzero(sample.label == j)
        others = taught.copy()
        others[j] = False
        if external:
            zq, w, m = sample.z[rows], weights, mm
        else:
            cents = moved[jpos] * others[:, None]
            w = metric.apply(cents.T)
            m = np.einsum("cd,dc->c", cents, w)
            zq = _unit_rows(f[sample.index[rows]].astype(np.float64) - centres[jpos])
        cos = (zq @ w) / np.sqrt(np.maximum(metric.quad(zq)[:, None] * m[None, :], _EPS))
        cos[:, ~others] = -np.inf
        best = np.argmax(cos, axis=1)
        scores.append(cos[np.arange(len(rows)), best])
        landed.append(best)
    return np.concatenate(scores), np.concatenate(landed)


# -- baselines, with the same interface -------------------------------------------------
COSINE_TEMPERATURE = 0.05  # the live head's (device.head.NearestCentroidHead) defaults
COSINE_DOUBT = 1.0


@dataclass(frozen=True, eq=False)
class CosineFit:
    """Plain cosine nearest centroid of the raw embeddings, answering as the live head does.

    Same centroids, softmax temperature and evidence weighting as
    :class:`device.head.NearestCentroidHead` (so its answers and probabilities match);
    ``threshold`` (cosine) turns "unknown" on, ``None`` leaves it off as the box's default.
    """

    num_classes: int
    dim: int
    counts: np.ndarray
    threshold: Optional[float]
    _centroids: np.ndarray = field(repr=False)

    @property
    def taught(self) -> np.ndarray:
        return self.counts > 0

    def scores(self, embeddings) -> np.ndarray:
        q = _unit_rows(np.asarray(_check_queries(embeddings, self.dim), dtype=np.float64))
        return np.where(self.taught[None, :], q @ self._centroids.T, -np.inf)

    def assess(self, embeddings) -> Assessment:
        s = self.scores(embeddings)
        m = len(s)
        taught = self.taught
        probabilities = np.zeros((m, self.num_classes))
        if not taught.any():
            none = np.full(m, -1)
            return Assessment(none, none, np.zeros(m), np.full(m, np.nan), probabilities)
        best = np.argmax(s, axis=1)
        rows = np.arange(m)
        logits = s[:, taught] / COSINE_TEMPERATURE
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        n = self.counts[taught]
        probabilities[:, taught] = e / e.sum(axis=1, keepdims=True) * (n / (n + COSINE_DOUBT))
        novelty = s[rows, best]
        q = np.asarray(embeddings, dtype=np.float64).reshape(m, self.dim)
        known = np.linalg.norm(q, axis=1) > _EPS
        if self.threshold is not None:
            known &= novelty >= self.threshold
        return Assessment(np.where(known, best, -1), best, probabilities[rows, best], novelty, probabilities)

    def predict(self, embedding) -> Prediction:
        e = _check_embedding(embedding, self.dim)
        return _prediction_from(self.assess(e), self.scores(e)[0], self.taught)


def fit_cosine(vectors, labels, num_classes: int, *, threshold: Optional[float] = None) -> CosineFit:
    """The plain cosine nearest-centroid baseline (the live head's maths, fitted at once)."""
    num_classes = _check_num_classes(num_classes)
    x = _check_vectors(vectors)
    n, dim = x.shape
    y = _check_labels(labels, n, num_classes)
    units = _unit_rows(x.astype(np.float64))
    sums = np.zeros((num_classes, dim))
    np.add.at(sums, y, units)
    counts = np.bincount(y, minlength=num_classes).astype(np.int64)
    centroids = _unit_rows(sums)
    _readonly(counts, centroids)
    return CosineFit(num_classes, dim, counts, threshold, centroids)


@dataclass(frozen=True, eq=False)
class NeighbourFit:
    """k nearest neighbours by cosine, majority vote (Coral's project-teachable, Teachable Machine v1).

    Probabilities are the vote shares; ties go to the class whose voters are the more
    similar; ``novelty`` is the similarity of the nearest voter for the answer.
    """

    num_classes: int
    dim: int
    counts: np.ndarray
    k: int
    _units: np.ndarray = field(repr=False)
    _labels: np.ndarray = field(repr=False)

    @property
    def taught(self) -> np.ndarray:
        return self.counts > 0

    def _votes(self, embeddings):
        q = _unit_rows(np.asarray(_check_queries(embeddings, self.dim), dtype=np.float64))
        m = len(q)
        if not len(self._labels):
            return np.zeros((m, self.num_classes)), np.zeros((m, self.num_classes))
        sims = q @ self._units.T
        k = min(self.k, sims.shape[1])
        near = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        near_sims = np.take_along_axis(sims, near, axis=1)
        votes = np.zeros((m, self.num_classes))
        support = np.zeros((m, self.num_classes))
        nearest = np.full((m, self.num_classes), -np.inf)
        rows = np.repeat(np.arange(m), k)
        classes = self._labels[near].ravel()
        np.add.at(votes, (rows, classes), 1.0)
        np.add.at(support, (rows, classes), near_sims.ravel())
        np.maximum.at(nearest, (rows, classes), near_sims.ravel())
        return votes + 1e-6 * support, nearest

    def scores(self, embeddings) -> np.ndarray:
        votes, _ = self._votes(embeddings)
        return np.where(self.taught[None, :], votes, -np.inf)

    def assess(self, embeddings) -> Assessment:
        votes, nearest = self._votes(embeddings)
        m = len(votes)
        probabilities = np.zeros((m, self.num_classes))
        if not self.taught.any():
            none = np.full(m, -1)
            return Assessment(none, none, np.zeros(m), np.full(m, np.nan), probabilities)
        best = np.argmax(np.where(self.taught[None, :], votes, -np.inf), axis=1)
        rows = np.arange(m)
        probabilities[:] = np.floor(votes + 0.5) / min(self.k, len(self._labels))
        return Assessment(best, best, probabilities[rows, best], nearest[rows, best], probabilities)

    def predict(self, embedding) -> Prediction:
        e = _check_embedding(embedding, self.dim)
        a = self.assess(e)
        return _prediction_from(a, self._votes(e)[1][0], self.taught)


def fit_neighbours(vectors, labels, num_classes: int, *, k: int = 3) -> NeighbourFit:
    """The kNN baseline (k = 3, cosine, majority of the k nearest examples)."""
    num_classes = _check_num_classes(num_classes)
    x = _check_vectors(vectors)
    n, _ = x.shape
    y = _check_labels(labels, n, num_classes)
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a whole number >= 1, not {k!r}")
    units = _unit_rows(x.astype(np.float64))
    counts = np.bincount(y, minlength=num_classes).astype(np.int64)
    _readonly(counts, units, y)
    return NeighbourFit(num_classes, x.shape[1], counts, int(k), units, y)
