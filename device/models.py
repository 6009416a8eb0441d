"""Known embedding models and how to fetch them (download or local mirror), sha256-checked.

Model files never enter git: they are fetched into the model directory.  Nothing is
installed unless its sha256 matches; the file appears atomically (temp file + rename).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from .atomic import atomic_file, sha256_of
from .errors import ChecksumError, ModelError, ModelMissingError

log = logging.getLogger(__name__)

MIRROR_ENV = "TEACHBOX_MODEL_MIRROR"
_UPSTREAM = "https://github.com/google-coral/test_data/raw/104342d2d3480b3e66203073dac24f4e2dbb4c41/"


@dataclass(frozen=True)
class KnownModel:
    filename: str
    sha256: str
    dim: int
    input_size: int
    url: Optional[str]  # None: derived file, only available from a mirror
    note: str


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
    )
}
DEFAULT_MODEL = "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"


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


def fetch_command(model_dir: Path, name: str = DEFAULT_MODEL, *, force: bool = False) -> str:
    """The complete command that puts model ``name`` into ``model_dir``, ready to paste into a shell.

    It names the mirror of ``$TEACHBOX_MODEL_MIRROR`` when that is set (so it also works where the
    variable is not, e.g. under sudo); a model without a public download needs ``--mirror DIR``.
    """
    words = [teachbox_command(), "fetch-model"] + (["--force"] if force else [])
    words += ["--model-dir", str(model_dir)] + (["--name", name] if name != DEFAULT_MODEL else [])
    mirror = environment_mirror()
    if mirror is not None:
        return shlex.join(words + ["--mirror", str(mirror)])
    needs_mirror = name in MODELS and MODELS[name].url is None
    return shlex.join(words) + (" --mirror DIR" if needs_mirror else "")


def fetch_hint(model_path: Path, *, force: bool = False) -> str:
    """The exact command that puts ``model_path`` in place (when it is a known model)."""
    if model_path.name not in MODELS:
        return f"Check the path, or fetch the default model with: {fetch_command(model_path.parent, force=force)}"
    return f"Fetch it with: {fetch_command(model_path.parent, model_path.name, force=force)}"


def fetch_model(
    model_dir: Path,
    name: str = DEFAULT_MODEL,
    *,
    mirror: Optional[Path] = None,
    force: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Put model ``name`` into ``model_dir`` and return its path.

    From ``mirror`` (or ``$TEACHBOX_MODEL_MIRROR``) when given, otherwise downloaded
    from upstream.  A file already there with the right sha256 is kept unless
    ``force``.  A sha256 mismatch raises :class:`ChecksumError` and installs nothing.
    """
    model = known_model(name)
    model_dir = Path(model_dir)
    target = model_dir / model.filename
    if target.is_file() and not force and sha256_of(target) == model.sha256:
        log.info("model %s is already in %s (sha256 ok)", model.filename, model_dir)
        return target
    if mirror is None:
        mirror = environment_mirror()
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        return _install(model, target, mirror, timeout)
    except ModelError:
        raise
    except OSError as exc:
        raise ModelError(f"cannot install {model.filename} into {str(model_dir)!r}: {exc.strerror or exc}") from None


def _install(model: KnownModel, target: Path, mirror: Optional[Path], timeout: float) -> Path:
    with atomic_file(target) as out:
        if mirror is not None:
            _copy_from_mirror(Path(mirror), model, out)
        else:
            _download(model, out, timeout)
        out.flush()
        actual = sha256_of(Path(out.name))
        if actual != model.sha256:
            raise ChecksumError(
                f"{model.filename} from {mirror or model.url} has sha256 {actual}, expected "
                f"{model.sha256}: refused, nothing was installed. The source is damaged or not "
                "the right file."
            )
    log.info("installed %s into %s (sha256 ok)", model.filename, target.parent)
    return target


def _copy_from_mirror(mirror: Path, model: KnownModel, out) -> None:
    source = mirror / model.filename
    if not source.is_file():
        raise ModelMissingError(f"the mirror folder {str(mirror)!r} has no {model.filename}")
    with open(source, "rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)


def _download(model: KnownModel, out, timeout: float) -> None:
    if model.url is None:
        raise ModelError(
            f"{model.filename} has no public download; copy it from a mirror folder with "
            f"--mirror DIR or ${MIRROR_ENV}"
        )
    log.info("downloading %s", model.url)
    try:
        with urllib.request.urlopen(model.url, timeout=timeout) as response:  # noqa: S310 - fixed https URL
            shutil.copyfileobj(response, out, 1 << 20)
    except OSError as exc:
        raise ModelError(
            f"could not download {model.filename} ({exc}). Check the network, or copy it from "
            f"a folder with: {teachbox_command()} fetch-model --mirror DIR"
        ) from None

