"""The fixed feature extractor: a TFLite MobileNet cut before its classifier.

The interpreter comes from ``ai-edge-litert`` or, failing that, ``tflite-runtime``.
Input size, dtype and quantization are read from the model, so uint8, int8 and
float32 models all work; the output is dequantized to float32.

:func:`prepare_frame` is the one preprocessing function, used for teaching,
predicting and evaluating alike.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from importlib import metadata
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
from PIL import Image

from .atomic import sha256_of
from .errors import ModelError, ModelMissingError, RuntimeMissingError
from .models import fetch_hint

log = logging.getLogger(__name__)

try:  # Pillow >= 9.1
    _SMOOTH = Image.Resampling.BILINEAR
except AttributeError:  # pragma: no cover - old Pillow
    _SMOOTH = Image.BILINEAR

# MobileNet's convention: pixels 0..255 map linearly onto real values -1..1.
_REAL_LOW, _REAL_HIGH = -1.0, 1.0
INSTALL_HINT = "pip install ai-edge-litert   (or, on Python <= 3.11: pip install tflite-runtime)"


def load_interpreter_class():
    """``(Interpreter, runtime_name)`` from ai-edge-litert, else tflite-runtime."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError as first:
        try:
            from tflite_runtime.interpreter import Interpreter

            return Interpreter, "tflite-runtime"
        except ImportError as second:
            raise RuntimeMissingError(
                "No TFLite runtime can be imported: neither ai-edge-litert "
                f"({first}) nor tflite-runtime ({second}). Install one with: {INSTALL_HINT}"
            ) from None


_FD2 = threading.Lock()  # one redirection of file descriptor 2 at a time


@contextlib.contextmanager
def native_stderr_logged(what: str):
    """Catch what native code writes to file descriptor 2 meanwhile and log it instead.

    The TFLite runtimes print lines such as "INFO: Created TensorFlow Lite XNNPACK
    delegate for CPU." straight to fd 2 whenever a model is loaded.  ``INFO:`` lines
    are logged at debug level; every other line (a real problem) at warning level,
    naming ``what`` was being done.  Anything another thread writes to stderr
    meanwhile is caught too and logged the same way, never lost.
    """
    with _FD2:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all (closed by a daemon manager): nothing to hide
            yield
            return
        try:
            with tempfile.TemporaryFile() as caught:  # a file, unlike a pipe, never fills up and blocks
                _flush_stderr()
                os.dup2(caught.fileno(), 2)
                try:
                    yield
                finally:
                    _flush_stderr()
                    os.dup2(saved, 2)
                    caught.seek(0)
                    _log_native_lines(caught.read().decode("utf-8", "replace"), what)
        finally:
            os.close(saved)


def _flush_stderr() -> None:
    if sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()


def _log_native_lines(text: str, what: str) -> None:
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        if line.startswith("INFO: "):
            log.debug("%s: the TFLite runtime says: %s", what, line)
        else:
            log.warning("%s: the TFLite runtime says: %s", what, line)


def runtime_version(runtime: str) -> str:
    try:
        return metadata.version(runtime)
    except metadata.PackageNotFoundError:
        return "unknown"


def centre_crop(frame: np.ndarray, aspect: float = 1.0) -> np.ndarray:
    """The largest centred window of ``frame`` with width/height ``aspect`` (a view, no copy)."""
    height, width = frame.shape[:2]
    if width > height * aspect:
        new_width = max(1, int(round(height * aspect)))
        left = (width - new_width) // 2
        return frame[:, left:left + new_width]
    new_height = max(1, int(round(width / aspect)))
    top = (height - new_height) // 2
    return frame[top:top + new_height, :]


def prepare_frame(frame: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Any HxWx3 uint8 RGB frame -> centre crop to the model's aspect -> smooth resize.

    ``size`` is ``(height, width)`` of the model input.  The aspect ratio is never
    squashed and the filter is never nearest-neighbour (Pillow's bilinear filter
    widens its support when shrinking, so it also anti-aliases).  A frame that is
    already the right size is returned as it is.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB frame, got shape {frame.shape} dtype {frame.dtype}")
    height, width = size
    crop = centre_crop(frame, width / height)
    if crop.shape[0] == height and crop.shape[1] == width:
        return crop
    image = Image.fromarray(np.ascontiguousarray(crop))
    return np.asarray(image.resize((width, height), _SMOOTH, reducing_gap=3.0))


def input_lookup_table(dtype: np.dtype, quantization: Tuple[float, int]) -> Optional[np.ndarray]:
    """Pixel value -> model input value, or ``None`` when raw uint8 pixels are the input."""
    pixels = np.arange(256, dtype=np.float64)
    real = _REAL_LOW + pixels * (_REAL_HIGH - _REAL_LOW) / 255.0
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return real.astype(dtype)
    scale, zero_point = quantization
    if not scale:
        raise ModelError(f"model input is {dtype} but has no quantization parameters")
    info = np.iinfo(dtype)
    table = np.clip(np.rint(real / scale + zero_point), info.min, info.max).astype(dtype)
    if dtype == np.uint8 and np.abs(table.astype(np.int16) - pixels.astype(np.int16)).max() <= 1:
        return None  # e.g. scale 1/128, zero point 128: the model takes raw pixels
    return table


class Embedder:
    """One interpreter, created once and reused for every frame.

    :param model_path: the ``.tflite`` embedding extractor.
    :param num_threads: interpreter threads; ``None`` = all cores.
    """

    name = "picture"  # the feature source it is (device.sources)
    look = None  # it finds no landmarks

    def __init__(self, model_path, *, num_threads: Optional[int] = None) -> None:
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelMissingError(f"model file {str(self.model_path)!r} does not exist. {fetch_hint(self.model_path)}")
        self.num_threads = num_threads or os.cpu_count() or 1
        interpreter_class, self.runtime = load_interpreter_class()
        try:
            with native_stderr_logged(f"loading {self.model_path.name}"):
                self._interpreter = interpreter_class(model_path=str(self.model_path), num_threads=self.num_threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"model file {str(self.model_path)!r} cannot be loaded ({exc}). It may be damaged. "
                f"{fetch_hint(self.model_path, force=True)}"
            ) from None
        self.sha256 = sha256_of(self.model_path)
        self._read_signature()

    def _read_signature(self) -> None:
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"model {self.model_path.name} must have one input and one output tensor")
        shape = tuple(int(s) for s in inputs[0]["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
            raise ModelError(f"model {self.model_path.name} input shape {shape} is not [1, H, W, 3]")
        self.input_size = (shape[1], shape[2])
        self.input_dtype = np.dtype(inputs[0]["dtype"])
        self._input_index = inputs[0]["index"]
        self._lut = input_lookup_table(self.input_dtype, tuple(inputs[0]["quantization"]))
        self._input = np.empty(shape, dtype=self.input_dtype)
        self._output_index = outputs[0]["index"]
        self.dim = int(np.prod(outputs[0]["shape"]))
        self._out_scale, self._out_zero = outputs[0]["quantization"]
        self._out_dtype = np.dtype(outputs[0]["dtype"])
        self._out_quantized = self._out_dtype.kind in "iu" and bool(self._out_scale)
        self._embedding = np.empty(self.dim, dtype=np.float32)

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """:func:`prepare_frame` at this model's input size."""
        return prepare_frame(frame, self.input_size)

    def infer(self, prepared: np.ndarray) -> np.ndarray:
        """Embed a prepared (model-sized) frame.

        The returned float32 vector is a buffer reused by the next call: copy it to keep it.
        """
        if self._lut is None and prepared.flags.c_contiguous:
            self._interpreter.set_tensor(self._input_index, prepared[np.newaxis])  # one copy, into the model
        else:
            if self._lut is None:
                self._input[0] = prepared
            else:
                np.take(self._lut, prepared, out=self._input[0])
            self._interpreter.set_tensor(self._input_index, self._input)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._output_index).reshape(-1)
        if self._out_quantized:
            np.subtract(raw, self._out_zero, out=self._embedding, dtype=np.float32)
            self._embedding *= self._out_scale
        else:
            self._embedding[:] = raw
        return self._embedding

    def to_stored(self, embedding: np.ndarray) -> np.ndarray:
        """A copy of ``embedding`` as the model output it: its quantized values (1 byte each) when quantized.

        Exact: :meth:`from_stored` gives back the very float vector :meth:`infer` returned.
        """
        if not self._out_quantized:
            return np.array(embedding, dtype=np.float32)
        info = np.iinfo(self._out_dtype)
        raw = np.rint(np.asarray(embedding, dtype=np.float64) / self._out_scale + self._out_zero)
        return np.clip(raw, info.min, info.max).astype(self._out_dtype)

    def from_stored(self, vector: np.ndarray) -> np.ndarray:
        """The float embedding of a vector kept by :meth:`to_stored`."""
        if not self._out_quantized:
            return np.asarray(vector, dtype=np.float32)
        return ((np.asarray(vector, dtype=np.float32) - np.float32(self._out_zero))
                * np.float32(self._out_scale)).astype(np.float32)

    def embed(self, frame: np.ndarray) -> np.ndarray:
        return self.infer(self.prepare(frame))

    def seen(self, prepared: np.ndarray) -> np.ndarray:
        """What an example keeps of a frame: the model-sized picture the model saw."""
        return prepared

    def reset(self) -> None:
        """Nothing is tracked from frame to frame (the landmark sources' counterpart)."""

    def describe(self) -> dict:
        return {
            "source": self.name,
            "model": self.model_path.name,
            "model_path": str(self.model_path),
            "model_sha256": self.sha256,
            "dim": self.dim,
            "input_size": list(self.input_size),
            "input_dtype": str(self.input_dtype),
            "runtime": self.runtime,
            "runtime_version": runtime_version(self.runtime),
            "threads": self.num_threads,
        }

    def __repr__(self) -> str:
        return (
            f"<Embedder model={self.model_path.name!r} input={self.input_size} {self.input_dtype} "
            f"dim={self.dim} runtime={self.runtime} threads={self.num_threads}>"
        )
