"""What the box looks at: the feature source seam between the camera and the head.

Four sources, one interface (the loop, teaching, the examples library, evaluation and the
page use only this):

- ``picture``: the whole frame through the MobileNet embedder (:class:`~device.embedder.Embedder`);
- ``hand``, ``face``, ``pose``: MediaPipe's detector and landmark models find one hand, face
  or person, and the landmarks become shape features that ignore the background
  (:class:`LandmarkSource` over a landmarker and a feature function).

A source has ``prepare(frame)`` (cheap, before the model), ``infer(prepared)`` (the features,
or ``None`` when no hand, face or person is in view), ``seen(prepared)`` (the picture the last
features came from: the hand crop, or the model-sized frame; it is stored with an example),
``look`` (what the last frame found, for drawing; ``None`` for pictures), ``reset()``,
``embed(frame)``, ``describe()``, ``to_stored``/``from_stored``, ``dim``, ``sha256`` and
``input_size`` (the camera frame it asks for).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from .embedder import Embedder, load_interpreter_class, runtime_version
from .errors import ConfigError

log = logging.getLogger(__name__)

SOURCES = ("picture", "hand", "face", "pose")
LANDMARK_FRAME = (480, 640)  # (height, width) the landmark sources ask of the camera: room for a small hand

# What each source calls the thing it looks for (the answer when there is none: "no hand").
THING = {"picture": "picture", "hand": "hand", "face": "face", "pose": "person"}

# MediaPipe's hand connections (wrist 0; thumb 1-4, index 5-8, middle 9-12, ring 13-16, pinky 17-20).
HAND_EDGES: Tuple[Tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
    (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20))
# MediaPipe's pose connections over the 33 body landmarks.
POSE_EDGES: Tuple[Tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13), (13, 15),
    (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (28, 30), (29, 31),
    (30, 32), (27, 31), (28, 32))


@dataclass(frozen=True)
class Look:
    """What a landmark source found in a frame: its landmarks as fractions of the frame (x right, y down)."""

    kind: str  # "hand", "face" or "pose"
    points: np.ndarray  # (N, 2) float32 in 0..1 of the frame's width and height
    edges: Tuple[Tuple[int, int], ...]  # pairs of point indices joined when drawn
    score: float  # how sure the model is that a hand (face, person) is there


class LandmarkSource:
    """A hand, face or pose source: ``finder.find(frame)`` -> landmarks -> ``features(found)``.

    :param kind: ``hand``, ``face`` or ``pose``.
    :param finder: has ``find(frame) -> found or None`` (``found.landmarks`` (N, >=2) in frame
        pixels, ``found.crop``, ``found.score``), ``reset()`` and ``sha256s`` (file name -> sha256).
    :param features: ``features(found) -> float32 vector`` of ``dim`` values.
    :param version: names the features; examples are stored under it, so new features re-embed.
    """

    def __init__(self, kind: str, finder, features: Callable[[object], np.ndarray], *, dim: int, version: str,
                 edges: Tuple[Tuple[int, int], ...] = (), num_threads: Optional[int] = None,
                 model_path: Optional[Path] = None) -> None:
        self.name = kind
        self.finder = finder
        self._features = features
        self.dim = int(dim)
        self.version = version
        self.edges = edges
        self.input_size = LANDMARK_FRAME
        self.num_threads = num_threads or os.cpu_count() or 1
        self.model_path = Path(model_path) if model_path is not None else Path(f"{kind}-landmarks")
        self.runtime = load_interpreter_class()[1]
        files = dict(sorted(getattr(finder, "sha256s", {}).items()))
        self.files = tuple(files)
        identity = f"teachbox {kind} features {version}\n" + "".join(f"{n} {s}\n" for n, s in files.items())
        self.sha256 = hashlib.sha256(identity.encode()).hexdigest()
        self._vector = np.zeros(self.dim, dtype=np.float32)
        self._seen: Optional[np.ndarray] = None
        self._look: Optional[Look] = None

    def __repr__(self) -> str:
        found = "none" if self._look is None else f"{len(self._look.points)} points"
        return f"<LandmarkSource {self.name} dim={self.dim} features={self.version} last={found}>"

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB frame, got shape {frame.shape} dtype {frame.dtype}")
        return frame

    def infer(self, prepared: np.ndarray) -> Optional[np.ndarray]:
        """The shape features of the one hand (face, person) in ``prepared``; ``None`` if there is none.

        The vector is a buffer reused by the next call: copy it to keep it.
        """
        found = self.finder.find(prepared)
        if found is None:
            self._seen = None
            self._look = None
            return None
        vector = self._features(found)
        if vector.shape != (self.dim,) or not np.all(np.isfinite(vector)):
            self._seen = None
            self._look = None
            return None
        self._vector[:] = vector
        self._seen = found.crop
        height, width = prepared.shape[:2]
        points = np.asarray(found.landmarks, dtype=np.float32)[:, :2] / np.array([width, height], np.float32)
        self._look = Look(self.name, points, self.edges, float(found.score))
        return self._vector

    def seen(self, prepared: np.ndarray) -> np.ndarray:
        """The crop the last features came from (what an example keeps); ``prepared`` if nothing was found."""
        return prepared if self._seen is None else self._seen

    @property
    def look(self) -> Optional[Look]:
        return self._look

    def reset(self) -> None:
        """Forget the tracked hand (face, person): the next frame is searched from scratch."""
        self.finder.reset()
        self._seen = None
        self._look = None

    def embed(self, frame: np.ndarray) -> Optional[np.ndarray]:
        return self.infer(self.prepare(frame))

    def to_stored(self, vector: np.ndarray) -> np.ndarray:
        return np.array(vector, dtype=np.float32)

    def from_stored(self, vector: np.ndarray) -> np.ndarray:
        return np.asarray(vector, dtype=np.float32)

    def describe(self) -> dict:
        interpreter = self.runtime
        return {
            "source": self.name,
            "model": f"{self.name} landmarks ({', '.join(self.files)})",
            "model_path": str(self.model_path),
            "model_sha256": self.sha256,
            "features": self.version,
            "dim": self.dim,
            "input_size": list(self.input_size),
            "input_dtype": "float32",
            "runtime": interpreter,
            "runtime_version": runtime_version(interpreter),
            "threads": self.num_threads,
        }


def source_of_model(model_name: str) -> str:
    """Which source a stored model name (:meth:`describe`'s ``model``) belongs to: an export's, say."""
    for kind in SOURCES[1:]:
        if model_name.startswith(f"{kind} landmarks ("):
            return kind
    return "picture"


def check_source(name: object) -> str:
    if not isinstance(name, str) or name not in SOURCES:
        raise ConfigError(f"unknown source {name!r}; the box can look at: {', '.join(SOURCES)}")
    return name


def open_source(name: str, *, picture_model: Path, model_dirs: Sequence[Path] = (),
                num_threads: Optional[int] = None, lite: bool = False):
    """The source ``name``, its models loaded (:class:`~device.errors.ModelError` says which file to fetch)."""
    check_source(name)
    if name == "picture":
        return Embedder(picture_model, num_threads=num_threads)
    folder = landmark_dir(model_dirs, picture_model)
    return _LANDMARK_SOURCES[name](folder, num_threads=num_threads, lite=lite)


def landmark_dir(model_dirs: Sequence[Path], picture_model: Path) -> Path:
    """The model folder holding the landmark models: the first of ``model_dirs`` with any, else the picture's."""
    for folder in model_dirs:
        if any(Path(folder).glob("*_landmark*.tflite")):
            return Path(folder)
    return Path(picture_model).parent


def _hand(folder: Path, *, num_threads: Optional[int], lite: bool) -> LandmarkSource:
    from .handshape import HAND_FEATURES_DIM, HAND_FEATURES_VERSION, hand_features
    from .hands import HandLandmarker

    finder = HandLandmarker(folder, num_threads=num_threads, lite=lite)
    return LandmarkSource("hand", finder, hand_features, dim=HAND_FEATURES_DIM, version=HAND_FEATURES_VERSION,
                          edges=HAND_EDGES, num_threads=num_threads, model_path=folder)


def _face(folder: Path, *, num_threads: Optional[int], lite: bool) -> LandmarkSource:
    from .faces import FaceLandmarker
    from .faceshape import FACE_FEATURES_DIM, FACE_FEATURES_VERSION, face_features

    finder = FaceLandmarker(folder, num_threads=num_threads)
    return LandmarkSource("face", finder, face_features, dim=FACE_FEATURES_DIM, version=FACE_FEATURES_VERSION,
                          num_threads=num_threads, model_path=folder)


def _pose(folder: Path, *, num_threads: Optional[int], lite: bool) -> LandmarkSource:
    from .poses import PoseLandmarker
    from .poseshape import POSE_FEATURES_DIM, POSE_FEATURES_VERSION, pose_features

    finder = PoseLandmarker(folder, num_threads=num_threads)
    return LandmarkSource("pose", finder, pose_features, dim=POSE_FEATURES_DIM, version=POSE_FEATURES_VERSION,
                          edges=POSE_EDGES, num_threads=num_threads, model_path=folder)


_LANDMARK_SOURCES: Dict[str, Callable[..., LandmarkSource]] = {"hand": _hand, "face": _face, "pose": _pose}
