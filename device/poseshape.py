"""Body-pose features from the 33 pose landmarks (pure numpy, no I/O).

:func:`pose_features` answers "what is the body doing?" (arms up, a T, a yoga pose...), whoever
and wherever the person is:

- *position and size drop out*: coordinates are taken from the hips' centre and divided by the
  torso length (hips' centre to shoulders' centre, in 3D: z is in x's scale, so a torso leaning
  towards the camera keeps its length);
- the picture's "up" is kept (no rotation to the body): standing on one's hands is not standing;
- four groups, each of about unit range so they weigh alike in a cosine or metric head:

  1. ``x, y`` of 15 joints (nose, shoulders, elbows, wrists, hips, knees, ankles, toes) in
     torso lengths;
  2. their depth ``z`` (from the hips, in torso lengths), at half weight: the model's depth is
     the least sure coordinate;
  3. 8 joint angles in the picture (elbows, shoulders, hips, knees), 0..180 degrees mapped to -1..1:
     they do not depend on limb lengths nor on where the limbs point;
  4. the picture directions (unit vectors) of the upper arms, forearms, thighs, shins and torso.

- *mirror invariant*: a pose done facing left is the same pose facing right (web pictures and
  people do both).  Each left/right pair of values becomes two values that do not change when the
  picture is flipped: for heights and depths ``(l + r)/sqrt 2`` and ``|l - r|/sqrt 2``, for
  sideways values ``(l - r)/sqrt 2`` and ``|l + r|/sqrt 2``; a midline point keeps its height and
  ``|x|``.  So "left arm up" and "right arm up" look alike (both are "one arm up"); pass
  ``mirror_invariant=False`` to keep the sides apart (same dimension, same layout).
- *low visibility*: the landmark model places hidden and out-of-picture joints where the body
  must have them, and those guesses are kept (a yoga pose with a foot cut off is still that pose).
  But a guess is less sure than a seen joint, so every value that uses a joint of visibility ``v``
  below 0.5 is pulled towards a neutral standing body (arms down, legs straight), by a factor
  ``v / 0.5``; a joint the model is sure of counts fully.  The result is always finite.
"""

from __future__ import annotations

import numpy as np

POSE_FEATURES_VERSION = "pose-body-1"

_NOSE = 0
# (left, right) pairs, MediaPipe indices.
_SHOULDER, _ELBOW, _WRIST, _HIP, _KNEE, _ANKLE, _TOE = (11, 12), (13, 14), (15, 16), (23, 24), (25, 26), \
    (27, 28), (31, 32)
_PAIRED = (_SHOULDER, _ELBOW, _WRIST, _HIP, _KNEE, _ANKLE, _TOE)
# Angles at the middle joint, (left, right) as (a, joint, b).
_ANGLES = (
    ((11, 13, 15), (12, 14, 16)),   # elbow: shoulder-elbow-wrist
    ((13, 11, 23), (14, 12, 24)),   # shoulder: elbow-shoulder-hip
    ((11, 23, 25), (12, 24, 26)),   # hip: shoulder-hip-knee
    ((23, 25, 27), (24, 26, 28)),   # knee: hip-knee-ankle
)
# Limbs, (left, right) as (from, to): upper arm, forearm, thigh, shin.
_LIMBS = (((11, 13), (12, 14)), ((13, 15), (14, 16)), ((23, 25), (24, 26)), ((25, 27), (26, 28)))
_Z_WEIGHT = 0.5
_SURE = 0.5  # visibility from which a joint counts fully

# A neutral standing body, facing the camera, in the feature frame (hips' centre at 0, torso = 1,
# y down, the person's left on the picture's right): what unsure joints are pulled towards.
_NEUTRAL = np.zeros((33, 3))
_NEUTRAL[_NOSE] = (0.0, -1.45, 0.0)
for _side, _sx in ((0, 1.0), (1, -1.0)):
    _NEUTRAL[_SHOULDER[_side]] = (0.38 * _sx, -1.0, 0.0)
    _NEUTRAL[_ELBOW[_side]] = (0.45 * _sx, -0.45, 0.0)
    _NEUTRAL[_WRIST[_side]] = (0.48 * _sx, 0.05, 0.0)
    _NEUTRAL[_HIP[_side]] = (0.18 * _sx, 0.0, 0.0)
    _NEUTRAL[_KNEE[_side]] = (0.2 * _sx, 0.85, 0.0)
    _NEUTRAL[_ANKLE[_side]] = (0.2 * _sx, 1.7, 0.0)
    _NEUTRAL[_TOE[_side]] = (0.22 * _sx, 1.8, -0.15)

POSE_FEATURES_DIM = 2 * len(_PAIRED) * 3 + 3 + len(_ANGLES) * 2 + len(_LIMBS) * 4 + 2  # 71


def _angle(p: np.ndarray, a: int, j: int, b: int) -> float:
    u, v = p[a, :2] - p[j, :2], p[b, :2] - p[j, :2]
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu < 1e-9 or nv < 1e-9:
        return 0.0
    cos = float(np.clip(u @ v / (nu * nv), -1.0, 1.0))
    return np.arccos(cos) / np.pi * 2.0 - 1.0


def _direction(p: np.ndarray, a: int, b: int) -> np.ndarray:
    d = p[b, :2] - p[a, :2]
    n = np.linalg.norm(d)
    return d / n if n > 1e-9 else np.zeros(2)


def normalised_body(landmarks, visibility=None) -> np.ndarray:
    """``(33, 3)`` float64: the landmarks from the hips' centre in torso lengths, unsure joints
    pulled towards a neutral standing body (see the module doc).  Zeros when degenerate."""
    p = np.asarray(landmarks, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 33 or p.shape[1] < 3:
        raise ValueError(f"expected (33, 3) pose landmarks, got shape {p.shape}")
    p = p[:33, :3]
    if not np.all(np.isfinite(p)):
        return np.zeros((33, 3))
    hips = p[list(_HIP)].mean(axis=0)
    shoulders = p[list(_SHOULDER)].mean(axis=0)
    torso = float(np.linalg.norm(shoulders - hips))
    if torso < 1e-6:
        return np.zeros((33, 3))
    body = (p - hips) / torso
    if visibility is not None:
        v = np.nan_to_num(np.asarray(visibility, dtype=np.float64).reshape(-1)[:33], nan=0.0)
        sure = np.clip(v / _SURE, 0.0, 1.0)[:, None]
        body = sure * body + (1.0 - sure) * _NEUTRAL
    return body


def _pair(left: float, right: float, sideways: bool, invariant: bool):
    if not invariant:
        return left, right
    r2 = np.sqrt(0.5)
    if sideways:
        return (left - right) * r2, abs(left + right) * r2
    return (left + right) * r2, abs(left - right) * r2


def pose_features(pose, *, mirror_invariant: bool = True) -> np.ndarray:
    """``(POSE_FEATURES_DIM,)`` float32 features of a :class:`device.poses.Pose` (or of a
    ``(33, 3)`` landmark array, every joint then counted as visible); always finite."""
    landmarks = getattr(pose, "landmarks", pose)
    visibility = getattr(pose, "visibility", None)
    b = normalised_body(landmarks, visibility)
    if not b.any():
        return np.zeros(POSE_FEATURES_DIM, np.float32)
    out = []
    for left, right in _PAIRED:
        out += _pair(b[left, 0], b[right, 0], True, mirror_invariant)
        out += _pair(b[left, 1], b[right, 1], False, mirror_invariant)
        out += [w * _Z_WEIGHT for w in _pair(b[left, 2], b[right, 2], False, mirror_invariant)]
    nose = b[_NOSE]
    out += [abs(nose[0]) if mirror_invariant else nose[0], nose[1], nose[2] * _Z_WEIGHT]
    for left, right in _ANGLES:
        out += _pair(_angle(b, *left), _angle(b, *right), False, mirror_invariant)
    for left, right in _LIMBS:
        dl, dr = _direction(b, *left), _direction(b, *right)
        out += _pair(dl[0], dr[0], True, mirror_invariant)
        out += _pair(dl[1], dr[1], False, mirror_invariant)
    hips, shoulders = b[list(_HIP)].mean(axis=0), b[list(_SHOULDER)].mean(axis=0)
    torso = shoulders[:2] - hips[:2]
    torso = torso / max(np.linalg.norm(torso), 1e-9)
    out += [abs(torso[0]) if mirror_invariant else torso[0], torso[1]]
    return np.nan_to_num(np.asarray(out, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
