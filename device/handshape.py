"""Hand-shape features from 21 hand landmarks: what the few-shot head sees for a hand.

Pure numpy.  Two blocks, both invariant to where the hand is in the frame, how big it
is and how it is turned in the picture plane, and both unchanged when the picture is
mirrored (distances and angles do not change under a reflection), so a sign made with
the left hand gives the same features as with the right:

* the 210 pairwise 3-D distances of the landmarks (x, y and the model's z, which is in
  the same scale as x), divided by the palm size (mean of the wrist -> index, middle,
  ring, little finger base distances and the index -> little base distance), then
  standardised over the 210 (minus their mean, over their spread): what is left is the
  hand's shape, and two different signs are no longer alike in cosine just because every
  hand has long and short distances (raw, rock and paper were 0.91 alike, 0.62 after);
* the 15 finger-joint bend cosines (at the 3 joints of each finger, wrist included as
  the first finger's root).

The vector is always finite; a degenerate hand (all points together) gives zeros.
"""

from __future__ import annotations

import numpy as np

#: bump when the features change: the box stores examples under this name
HAND_FEATURES_VERSION = "hand-dist3d-angles-v2"

_PAIRS = np.triu_indices(21, 1)
_FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
_JOINTS = np.array([(chain[i - 1], chain[i], chain[i + 1])
                    for finger in _FINGERS for chain in [(0,) + finger] for i in range(1, 4)])
_PALM_BASES = np.array([5, 9, 13, 17])
HAND_FEATURES_DIM = len(_PAIRS[0]) + len(_JOINTS)  # 210 + 15 = 225
_EPS = 1e-9


def palm_size(points: np.ndarray) -> float:
    """Mean of the wrist -> finger-base distances and the index -> little finger base distance."""
    p = np.asarray(points, np.float64)
    spokes = np.linalg.norm(p[_PALM_BASES] - p[0], axis=1).mean()
    return float((spokes + np.linalg.norm(p[5] - p[17])) / 2)


def landmark_features(points: np.ndarray) -> np.ndarray:
    """(21, 2 or 3) landmarks -> (HAND_FEATURES_DIM,) float32 features."""
    p = np.asarray(points, np.float64)
    if p.shape[0] != 21 or p.ndim != 2 or p.shape[1] not in (2, 3):
        raise ValueError(f"expected (21, 3) hand landmarks, got shape {p.shape}")
    p = np.nan_to_num(p, nan=0.0, posinf=0.0, neginf=0.0)
    distances = np.linalg.norm(p[:, None, :] - p[None, :, :], axis=2)[_PAIRS]
    scale = palm_size(p)
    if not scale > _EPS:
        scale = float(distances.max())
    out = np.zeros(HAND_FEATURES_DIM, np.float64)
    if not scale > _EPS:
        return out.astype(np.float32)
    distances = distances / scale
    spread = distances.std()
    out[:distances.size] = (distances - distances.mean()) / spread if spread > _EPS else 0.0
    u = p[_JOINTS[:, 0]] - p[_JOINTS[:, 1]]
    v = p[_JOINTS[:, 2]] - p[_JOINTS[:, 1]]
    norms = np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1)
    out[distances.size:] = np.where(norms > _EPS * scale * scale, (u * v).sum(axis=1) / np.maximum(norms, _EPS), 0.0)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def hand_features(hand) -> np.ndarray:
    """A :class:`device.hands.Hand` (or its (21, 3) landmarks) -> (HAND_FEATURES_DIM,) float32."""
    return landmark_features(getattr(hand, "landmarks", hand))
