"""Facial-expression features from the 468-point face mesh (pure numpy, no I/O).

:func:`face_features` answers "what is the face doing?" (smiling, mouth open, eyes shut, brows
up, frowning...), not "whose face is it?" nor "where is it?":

1. *Head pose removed.*  A face frame is built from rigid points only (points that expressions do
   not move): its x axis runs along the symmetric pairs of eye corners and temples (right -> left),
   its y axis from the forehead (10) down to under the nose (2), made orthogonal to x, and z is
   their cross product.  The landmark model's z is in x's scale, so this is a 3D rotation: it undoes
   in-plane rotation exactly and head turns (yaw, pitch) as far as the model's depth is right.
   The origin is the middle of the eye corners and the unit is the distance between the two eye
   centres, so position and size drop out.
2. *Expression geometry*, in that frame, each divided by a nominal range so that a full movement
   (neutral -> extreme) is about 1 and every feature weighs about the same in a cosine or
   metric nearest-centroid head:

   per side (right and left eye, brow, mouth corner):
     eye opening (three lid gaps / eye width), brow height above the upper lid, inner and outer
     brow height (above the inner and outer eye corners), mouth-corner lift above the mouth
     centre, corner spread from the mouth centre, corner depth (smiles pull corners back),
     corner distance from the nose tip, upper- and lower-lip (outer) distance from the mouth
     centre at the side;
   on the midline:
     inner and outer mouth opening, jaw drop (chin to nose tip), upper-lip height (nose to
     lip), lips forward of the nose tip (pout), gap between the inner brow ends (frown),
     sideways shift of the mouth.

   Most are 3D distances between landmarks, which do not depend on how well the face frame
   was found; only the corner lift, spread and depth, the pout and the mouth shift need the
   frame's axes.  The nominal ranges are estimates from the face's proportions, not fitted to
   expression data (there was none here): with centred features a cosine head mostly sees
   their ratios, and the metric head rescales them from the examples anyway.

3. *Centred on a neutral face.*  The features of MediaPipe's canonical face model (its published
   neutral 468-vertex mesh, ``mediapipe/modules/face_geometry/data/canonical_face_model.obj``) are
   subtracted, so a neutral face is near zero and the cosine of two faces compares what their
   expressions do, not how much every face has a mouth and eyes (uncentred, two different people
   with neutral faces were 0.99 alike).

4. *Mirror invariant.*  Each per-side pair (right r, left l) becomes ``(r + l) / 2`` and
   ``|r - l| / 2``: a smile is a smile whichever way the picture is flipped, and a one-sided
   expression (a wink, a half smile) still shows as an asymmetry, though not which side.

The result is always finite (a degenerate mesh gives zeros).  :data:`FACE_FEATURES_VERSION`
changes whenever the features do, so stored examples from another version are not mixed in.
"""

from __future__ import annotations

import numpy as np

FACE_FEATURES_VERSION = "face-expression-2"

# Rigid landmarks (MediaPipe face mesh indices), "right" = the person's right (the image's left).
_PAIRS_FOR_X = ((33, 263), (133, 362), (127, 356), (234, 454))  # eye corners, temples, cheek sides
_TOP, _BOTTOM = 10, 2                                            # forehead top, under the nose
_EYE_CORNERS = (33, 133, 362, 263)
_NOSE_TIP = 1

# Per side: (right, left) indices.
_EYE_OUTER = (33, 263)
_EYE_INNER = (133, 362)
_LIDS = (((159, 145), (158, 153), (160, 144)), ((386, 374), (385, 380), (387, 373)))  # (upper, lower)
_BROW = ((70, 63, 105, 66, 107), (300, 293, 334, 296, 336))  # outer -> inner
_CORNER = (61, 291)
_UPPER_LIP_SIDE = (40, 270)
_LOWER_LIP_SIDE = (91, 321)
_UPPER_INNER, _LOWER_INNER, _UPPER_OUTER, _LOWER_OUTER = 13, 14, 0, 17
_CHIN = 152

# Nominal ranges (in inter-ocular distances, or a ratio for the eye opening) of a full movement.
_SIDE_SCALES = np.array([
    0.25,  # eye opening (ratio)
    0.10,  # brow height above the upper lid
    0.10,  # inner brow height
    0.10,  # outer brow height
    0.10,  # corner lift above the mouth centre
    0.10,  # corner spread from the mouth centre
    0.10,  # corner depth
    0.10,  # corner height under the nose tip
    0.08,  # upper lip at the side, above the mouth centre
    0.08,  # lower lip at the side, below the mouth centre
])
_MID_SCALES = np.array([
    0.30,  # inner mouth opening
    0.30,  # outer mouth opening
    0.20,  # jaw drop
    0.08,  # upper-lip height
    0.10,  # pout
    0.10,  # inner brow gap
    0.15,  # mouth shifted sideways (noisy: a wide range)
])
_SIDE_NAMES = ("eye_open", "brow_height", "brow_inner", "brow_outer", "corner_lift", "corner_spread",
               "corner_depth", "corner_below_nose", "upper_lip_side", "lower_lip_side")
_MID_NAMES = ("mouth_open_inner", "mouth_open_outer", "jaw_drop", "upper_lip_height", "pout", "brow_gap",
              "mouth_shift")

#: Names of the features, in order.
FACE_FEATURE_NAMES = tuple([f"{n}_mean" for n in _SIDE_NAMES] + [f"{n}_asymmetry" for n in _SIDE_NAMES]
                           + list(_MID_NAMES))
FACE_FEATURES_DIM = len(FACE_FEATURE_NAMES)  # 27


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else np.zeros_like(v)


def canonical_face(landmarks) -> np.ndarray:
    """The mesh in its own face frame (see the module doc): ``(468, 3)`` float64, unit = eye distance.

    Zeros when the mesh is degenerate (all points together, not finite).
    """
    p = np.asarray(landmarks, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 468 or p.shape[1] < 3:
        raise ValueError(f"expected (468, 3) face landmarks, got shape {p.shape}")
    p = p[:468, :3]
    if not np.all(np.isfinite(p)):
        return np.zeros((468, 3))
    x = _unit(sum(p[left] - p[right] for right, left in _PAIRS_FOR_X))
    down = p[_BOTTOM] - p[_TOP]
    y = _unit(down - (down @ x) * x)
    z = np.cross(x, y)
    eye_distance = float(np.linalg.norm(p[list(_EYE_CORNERS[2:])].mean(0) - p[list(_EYE_CORNERS[:2])].mean(0)))
    if eye_distance < 1e-6 or not (x.any() and y.any()):
        return np.zeros((468, 3))
    origin = p[list(_EYE_CORNERS)].mean(axis=0)
    return (p - origin) @ np.stack([x, y, z]).T / eye_distance


#: :func:`face_features` before centring, of MediaPipe's canonical (neutral) face model: a neutral face is 0.
FACE_NEUTRAL = np.array([
    0.9564, 4.2895, 4.6340, 3.2800, 0.1293, 3.8973, 1.6306, 8.1776, 3.9487, 3.9335,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.3059, 1.0623, 7.0432, 2.6176, -2.8915, 4.4290, 0.0])


def face_features(face) -> np.ndarray:
    """``(FACE_FEATURES_DIM,)`` float32 expression features of a :class:`device.faces.Face`
    (or of its ``(468, 3)`` landmark array); always finite."""
    landmarks = getattr(face, "landmarks", face)
    c = canonical_face(landmarks)
    if not c.any():
        return np.zeros(FACE_FEATURES_DIM, np.float32)
    mouth = (c[_UPPER_INNER] + c[_LOWER_INNER]) / 2
    nose = c[_NOSE_TIP]
    sides = np.empty((2, len(_SIDE_SCALES)))
    for s in range(2):
        eye_width = max(_dist(c[_EYE_OUTER[s]], c[_EYE_INNER[s]]), 1e-6)
        upper_lid = c[_LIDS[s][0][0]]
        brow = c[list(_BROW[s])]
        corner = c[_CORNER[s]]
        sides[s] = (
            np.mean([_dist(c[u], c[d]) for u, d in _LIDS[s]]) / eye_width,
            np.mean([_dist(c[b], upper_lid) for b in _BROW[s]]),
            _dist(c[_EYE_INNER[s]], brow[-1]),
            _dist(c[_EYE_OUTER[s]], brow[0]),
            mouth[1] - corner[1],
            abs(corner[0] - mouth[0]),
            corner[2] - mouth[2],
            _dist(corner, nose),
            _dist(mouth, c[_UPPER_LIP_SIDE[s]]),
            _dist(mouth, c[_LOWER_LIP_SIDE[s]]),
        )
    middle = np.array([
        _dist(c[_UPPER_INNER], c[_LOWER_INNER]),
        _dist(c[_UPPER_OUTER], c[_LOWER_OUTER]),
        _dist(c[_CHIN], nose),
        _dist(c[_UPPER_OUTER], c[_BOTTOM]),
        nose[2] - c[_UPPER_OUTER, 2],
        _dist(c[_BROW[0][-1]], c[_BROW[1][-1]]),
        abs(mouth[0]),
    ])
    mean = (sides[0] + sides[1]) / 2 / _SIDE_SCALES
    asymmetry = np.abs(sides[0] - sides[1]) / 2 / _SIDE_SCALES
    out = np.concatenate([mean, asymmetry, middle / _MID_SCALES]) - FACE_NEUTRAL
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
