"""Known model files and how to fetch them (download or local mirror), sha256-checked.

Two kinds: *embedding* models (MobileNet feature extractors: the box's model, the page's
model chooser) and *landmarks* models (MediaPipe hand/face/pose detectors and landmark
networks, unmodified files read out of the ``mediapipe`` wheel on PyPI; never imported).

Model files never enter git: they are fetched into the model directory.  Nothing is
installed unless its sha256 matches; each file appears atomically (temp file + rename).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shlex
import shutil
import sys
import tempfile
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Dict, Iterable, List, Optional, Tuple

from .atomic import atomic_file, sha256_of
from .errors import ChecksumError, ModelError, ModelMissingError

log = logging.getLogger(__name__)

MIRROR_ENV = "TEACHBOX_MODEL_MIRROR"
_UPSTREAM = "https://github.com/google-coral/test_data/raw/104342d2d3480b3e66203073dac24f4e2dbb4c41/"
MAX_MODEL_BYTES = 64 << 20  # no known model file is near this: anything bigger is not one of them

EMBEDDING = "embedding"
LANDMARKS = "landmarks"
LANDMARK_SOURCES = ("hand", "face", "pose")  # the landmark sources; ``--source all`` is every one


@dataclass(frozen=True)
class Archive:
    """A zip file at a fixed https URL (a Python wheel) that holds model files; checked by sha256 and size."""

    url: str
    sha256: str
    size: int
    name: str  # what the messages call it


MEDIAPIPE_WHEEL = Archive(
    "https://files.pythonhosted.org/packages/74/25/ee5679b8ddc58e97d417cfbc1c2b56346ea085a457aa61901ad225cc80bf/"
    "mediapipe-0.10.14-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
    "1061d499d341e7f11dd7f18d5bee747e862db8ef47665ff777323282225d4315",
    33017085,
    "the mediapipe 0.10.14 wheel (PyPI, aarch64)",
)


@dataclass(frozen=True)
class KnownModel:
    filename: str
    sha256: str
    dim: int  # embedding size; 0 for a landmarks model (it gives no embedding)
    input_size: int  # the input image's side in pixels
    url: Optional[str]  # the file's own download; None: in ``archive``, or only available from a mirror
    note: str
    kind: str = EMBEDDING  # EMBEDDING or LANDMARKS
    source: Optional[str] = None  # landmarks: "hand", "face" or "pose"
    role: Optional[str] = None  # landmarks: "detector" (finds the thing) or "landmarks" (its points, in a crop)
    variant: Optional[str] = None  # "lite" or "full" where MediaPipe has both, else None
    archive: Optional[Archive] = None  # the upstream zip that holds the file as ``member``
    member: Optional[str] = None

    @property
    def upstream(self) -> Optional[str]:
        """Where a download comes from (None: from a mirror folder only)."""
        if self.url is not None:
            return self.url
        return f"{self.archive.url} ({self.member})" if self.archive is not None else None


def _mediapipe(filename: str, sha256: str, input_size: int, source: str, role: str, variant: Optional[str],
               folder: str, note: str) -> KnownModel:
    return KnownModel(filename, sha256, 0, input_size, None, note, kind=LANDMARKS, source=source, role=role,
                      variant=variant, archive=MEDIAPIPE_WHEEL, member=f"mediapipe/modules/{folder}/{filename}")


MODELS: Dict[str, KnownModel] = {
    m.filename: m
    for m in (
        KnownModel(
            "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite",
            "f409ef4f73fcbb9667841965623c5c8524aac33d41b9bf5f3667161fb4a76319",
            1024, 224, _UPSTREAM + "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite",
            "default; official google-coral/test_data file",
        ),
        KnownModel(
            "mobilenet_v2_1.0_224_quant_embedding_extractor.tflite",
            "eb8998e33dcb3f631af1c9867287a35c7a880bdad66bf72e42ec3210c0a017b0",
            1280, 224, None, "derived from google-coral mobilenet_v2_1.0_224_quant (mirror only)",
        ),
        KnownModel(
            "mobilenet_v1_0.5_160_quant_embedding_extractor.tflite",
            "1c73b5280b7040749631c6a9bd257b55eb2b6e12d6713509b74725d4c610849b",
            512, 160, None, "derived, ~6x cheaper: for a Pi Zero 2 W or Pi 3 (mirror only)",
        ),
        _mediapipe("palm_detection_lite.tflite",
                   "e9a4aaddf90dda56a87235303cf00e4c2d3fb28725f68fd88772997dac905c18",
                   192, "hand", "detector", "lite", "palm_detection", "MediaPipe palm detector, lite"),
        _mediapipe("palm_detection_full.tflite",
                   "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54",
                   192, "hand", "detector", "full", "palm_detection", "MediaPipe palm detector, full"),
        _mediapipe("hand_landmark_full.tflite",
                   "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3",
                   224, "hand", "landmarks", "full", "hand_landmark", "MediaPipe 21 hand landmarks, full"),
        _mediapipe("hand_landmark_lite.tflite",
                   "048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6",
                   224, "hand", "landmarks", "lite", "hand_landmark", "MediaPipe 21 hand landmarks, lite"),
        _mediapipe("face_detection_short_range.tflite",
                   "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
                   128, "face", "detector", None, "face_detection", "MediaPipe face detector (short range)"),
        _mediapipe("face_landmark.tflite",
                   "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
                   192, "face", "landmarks", None, "face_landmark", "MediaPipe 468 face landmarks"),
        _mediapipe("pose_detection.tflite",
                   "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
                   224, "pose", "detector", None, "pose_detection", "MediaPipe pose (body) detector"),
        _mediapipe("pose_landmark_full.tflite",
                   "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
                   256, "pose", "landmarks", "full", "pose_landmark", "MediaPipe 33 pose landmarks, full"),
    )
}
DEFAULT_MODEL = "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"


def embedding_models() -> Dict[str, KnownModel]:
    """The models the box can run and switch to (what the page's model chooser offers), by file name."""
    return {name: m for name, m in MODELS.items() if m.kind == EMBEDDING}


def landmark_models(source: Optional[str] = None) -> Dict[str, KnownModel]:
    """The landmarks models (of one ``source``: "hand", "face" or "pose"; "all" or None: every one), by file name."""
    if source not in (None, "all") and source not in LANDMARK_SOURCES:
        raise ModelError(f"unknown landmark source {source!r}; known: {', '.join(LANDMARK_SOURCES)}, all")
    return {name: m for name, m in MODELS.items()
            if m.kind == LANDMARKS and source in (None, "all", m.source)}


def known_model(name: str) -> KnownModel:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None


def environment_mirror() -> Optional[Path]:
    """The mirror folder ``$TEACHBOX_MODEL_MIRROR`` names, as an absolute path (``None`` if unset)."""
    value = os.environ.get(MIRROR_ENV)
    return Path(os.path.abspath(value)) if value else None


def teachbox_command() -> str:
    """How to run this teachbox: ``teachbox`` if that is the one on PATH, else its full path.

    ``scripts/dev.sh`` and ``scripts/install.sh`` put it into a venv that is not on PATH.
    """
    program = sys.argv[0] if sys.argv else ""
    if Path(program).name != "teachbox":  # run some other way (python -m device, tests): the documented name
        return "teachbox"
    on_path = shutil.which("teachbox")
    if on_path and Path(on_path).resolve() == Path(program).resolve():
        return "teachbox"
    return os.path.abspath(program)


def fetch_command(model_dir: Path, name: str = DEFAULT_MODEL, *, force: bool = False,
                  source: Optional[str] = None) -> str:
    """The complete command that puts model ``name`` (or every file of landmark ``source``) into
    ``model_dir``, ready to paste into a shell.

    It names the mirror of ``$TEACHBOX_MODEL_MIRROR`` when that is set (so it also works where the
    variable is not, e.g. under sudo); a model without a public download needs ``--mirror DIR``.
    """
    words = [teachbox_command(), "fetch-model"] + (["--force"] if force else []) + ["--model-dir", str(model_dir)]
    if source is not None:
        words += ["--source", source]
    elif name != DEFAULT_MODEL:
        words += ["--name", name]
    mirror = environment_mirror()
    if mirror is not None:
        return shlex.join(words + ["--mirror", str(mirror)])
    needs_mirror = source is None and name in MODELS and MODELS[name].upstream is None
    return shlex.join(words) + (" --mirror DIR" if needs_mirror else "")


def fetch_hint(model_path: Path, *, force: bool = False) -> str:
    """The exact command that puts ``model_path`` in place (when it is a known model).

    A landmarks file is fetched with the rest of its source (``--source hand``: one download for all).
    """
    model = MODELS.get(model_path.name)
    if model is None:
        return f"Check the path, or fetch the default model with: {fetch_command(model_path.parent, force=force)}"
    if model.kind == LANDMARKS:
        return f"Fetch it with: {fetch_command(model_path.parent, force=force, source=model.source)}"
    return f"Fetch it with: {fetch_command(model_path.parent, model_path.name, force=force)}"


def fetch_model(
    model_dir: Path,
    name: str = DEFAULT_MODEL,
    *,
    mirror: Optional[Path] = None,
    force: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Put model ``name`` into ``model_dir`` and return its path (see :func:`fetch_models`)."""
    return fetch_models(model_dir, [name], mirror=mirror, force=force, timeout=timeout)[0]


def fetch_models(
    model_dir: Path,
    names: Iterable[str],
    *,
    mirror: Optional[Path] = None,
    force: bool = False,
    timeout: float = 60.0,
) -> List[Path]:
    """Put every model of ``names`` into ``model_dir`` and return their paths.

    From ``mirror`` (or ``$TEACHBOX_MODEL_MIRROR``) when given, otherwise downloaded from
    upstream: a file's own URL, or the zip (wheel) that holds it, downloaded once for all
    the files it holds and checked by its own sha256.  A file already there with the right
    sha256 is kept unless ``force``.  Every file is checked before any is put in place: a
    sha256 mismatch raises :class:`ChecksumError` and installs nothing.  ``timeout`` is
    per network read, in seconds.
    """
    models = [known_model(name) for name in dict.fromkeys(names)]
    model_dir = Path(model_dir)
    wanted = []
    for model in models:
        target = model_dir / model.filename
        if target.is_file() and not force and sha256_of(target) == model.sha256:
            log.info("model %s is already in %s (sha256 ok)", model.filename, model_dir)
        else:
            wanted.append(model)
    if mirror is None:
        mirror = environment_mirror()
    if wanted and mirror is None:
        mirror_only = [m.filename for m in wanted if m.upstream is None]
        if mirror_only:
            raise ModelError(f"{', '.join(mirror_only)} {'has' if len(mirror_only) == 1 else 'have'} no public "
                             f"download; copy {'it' if len(mirror_only) == 1 else 'them'} from a mirror folder "
                             f"with --mirror DIR or ${MIRROR_ENV}")
    try:
        if wanted:
            model_dir.mkdir(parents=True, exist_ok=True)
            _install(model_dir, wanted, None if mirror is None else Path(mirror), timeout)
    except ModelError:
        raise
    except OSError as exc:
        names_ = ", ".join(m.filename for m in wanted)
        raise ModelError(f"cannot install {names_} into {str(model_dir)!r}: {exc.strerror or exc}") from None
    return [model_dir / m.filename for m in models]


def _install(model_dir: Path, models: List[KnownModel], mirror: Optional[Path], timeout: float) -> None:
    """Stage every file in a temp file beside its target, check each, then rename them all into place."""
    with contextlib.ExitStack() as staged:  # on any error every temp file goes and no target is touched
        def stage(model: KnownModel) -> BinaryIO:
            return staged.enter_context(atomic_file(model_dir / model.filename))

        if mirror is not None:
            for model in models:
                _copy_from_mirror(mirror, model, stage(model))
        else:
            for model in (m for m in models if m.url is not None):
                _download(model, stage(model), timeout)
            by_archive: Dict[Archive, List[KnownModel]] = {}
            for model in (m for m in models if m.url is None):
                by_archive.setdefault(model.archive, []).append(model)
            for archive, members in by_archive.items():
                _extract(archive, members, stage, model_dir, timeout)
    for model in models:
        log.info("installed %s into %s (sha256 ok)", model.filename, model_dir)


def _copy_checked(src, out, limit: int, what: str) -> Tuple[str, int]:
    """Copy at most ``limit`` bytes (more is refused); the sha256 and size of what was copied."""
    digest, size = hashlib.sha256(), 0
    for block in iter(lambda: src.read(1 << 20), b""):
        size += len(block)
        if size > limit:
            raise ChecksumError(f"{what} is larger than the {limit} bytes expected: refused, nothing was installed. "
                                "The source is damaged or not the right file.")
        digest.update(block)
        try:
            out.write(block)
        except OSError as exc:  # not the source's fault (a full disk): not a download error either
            raise ModelError(f"cannot write {what} into the model folder: {exc.strerror or exc}; nothing was "
                             "installed") from None
    return digest.hexdigest(), size


def _check(model: KnownModel, actual: str, origin: str) -> None:
    if actual != model.sha256:
        raise ChecksumError(
            f"{model.filename} from {origin} has sha256 {actual}, expected {model.sha256}: refused, nothing "
            "was installed. The source is damaged or not the right file."
        )


def _copy_from_mirror(mirror: Path, model: KnownModel, out: BinaryIO) -> None:
    source = mirror / model.filename
    if not source.is_file():
        raise ModelMissingError(f"the mirror folder {str(mirror)!r} has no {model.filename}: nothing was installed")
    with open(source, "rb") as src:
        actual, _ = _copy_checked(src, out, MAX_MODEL_BYTES, str(source))
    _check(model, actual, str(mirror))


def _offline(what: str, exc: OSError) -> ModelError:
    return ModelError(
        f"could not download {what} ({exc}). Check the network, or copy the files from a mirror folder "
        f"instead: the same {teachbox_command()} fetch-model command with --mirror DIR (or ${MIRROR_ENV} set)"
    )


def _download(model: KnownModel, out: BinaryIO, timeout: float) -> None:
    log.info("downloading %s", model.url)
    try:
        with urllib.request.urlopen(model.url, timeout=timeout) as response:  # noqa: S310 - fixed https URL
            actual, _ = _copy_checked(response, out, MAX_MODEL_BYTES, f"{model.filename} from {model.url}")
    except OSError as exc:
        raise _offline(model.filename, exc) from None
    _check(model, actual, model.url)


def _extract(archive: Archive, models: List[KnownModel], stage, model_dir: Path, timeout: float) -> None:
    """Download ``archive`` once into a temp file beside the models, check it, and stage each model read out of it."""
    log.info("downloading %s (%.0f MB) for %s", archive.url, archive.size / 1e6, ", ".join(m.filename for m in models))
    with tempfile.TemporaryFile(dir=model_dir) as wheel:  # the same file system as the models; gone when closed
        try:
            with urllib.request.urlopen(archive.url, timeout=timeout) as response:  # noqa: S310 - fixed https URL
                actual, size = _copy_checked(response, wheel, archive.size, f"{archive.name} from {archive.url}")
        except OSError as exc:
            raise _offline(archive.name, exc) from None
        if (actual, size) != (archive.sha256, archive.size):
            raise ChecksumError(
                f"{archive.name} from {archive.url} has sha256 {actual} ({size} bytes), expected {archive.sha256} "
                f"({archive.size} bytes): refused, nothing was installed. The download is damaged or not the "
                "right file."
            )
        wheel.seek(0)
        try:
            with zipfile.ZipFile(wheel) as zipped:
                for model in models:
                    _extract_member(zipped, archive, model, stage(model))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as exc:
            raise ModelError(f"{archive.name} from {archive.url} cannot be read as a zip file ({exc}): "
                             "nothing was installed") from None


def _extract_member(zipped: zipfile.ZipFile, archive: Archive, model: KnownModel, out: BinaryIO) -> None:
    origin = f"{archive.url} ({model.member})"
    try:
        info = zipped.getinfo(model.member)
    except KeyError:
        raise ModelError(f"{archive.name} ({archive.url}) has no {model.member}: {model.filename} cannot be "
                         "taken from it; nothing was installed") from None
    if info.file_size > MAX_MODEL_BYTES:
        raise ChecksumError(f"{model.member} in {archive.name} is {info.file_size} bytes, more than any model: "
                            "refused, nothing was installed")
    with zipped.open(info) as src:
        actual, _ = _copy_checked(src, out, MAX_MODEL_BYTES, f"{model.member} in {archive.name}")
    _check(model, actual, origin)
