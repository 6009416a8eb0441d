"""A float32 TFLite model with a preallocated input and preallocated output buffers.

Generic: the hand, face and pose landmarkers all run their MediaPipe models through it.

LiteRT pitfall avoided here: a view from ``interpreter.tensor(i)()`` must not be kept
across ``invoke()`` (the runtime may move or overwrite it).  :meth:`TfliteModel.run`
takes the view only to copy it into this object's own buffer straight after
``invoke()`` and drops it, so the arrays it returns stay valid until the next ``run``.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from .atomic import sha256_of
from .embedder import load_interpreter_class, native_stderr_logged, runtime_version
from .errors import ModelError, ModelMissingError
from .models import fetch_hint

log = logging.getLogger(__name__)


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class TfliteModel:
    """One float32 model, loaded once.

    :param path: the ``.tflite`` file.
    :param num_threads: interpreter threads; ``None`` = all cores.

    ``input`` is the preallocated (1, H, W, C) float32 input: fill it and call
    :meth:`run` without an argument (no extra copy), or pass an array to :meth:`run`.
    ``outputs`` holds one preallocated float32 buffer per output tensor, in the
    model's output order; :meth:`output_index` finds one by name or size.
    """

    def __init__(self, path, *, num_threads: Optional[int] = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelMissingError(f"model file {str(self.path)!r} does not exist. {fetch_hint(self.path)}")
        self.num_threads = num_threads or os.cpu_count() or 1
        interpreter_class, self.runtime = load_interpreter_class()
        try:
            with native_stderr_logged(f"loading {self.path.name}"):
                self._interpreter = interpreter_class(model_path=str(self.path), num_threads=self.num_threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"model file {str(self.path)!r} cannot be loaded ({exc}). It may be damaged. "
                f"{fetch_hint(self.path, force=True)}"
            ) from None
        self.sha256 = sha256_of(self.path)
        inputs = self._interpreter.get_input_details()
        if len(inputs) != 1:
            raise ModelError(f"model {self.path.name} has {len(inputs)} inputs; one float32 image input is expected")
        detail = inputs[0]
        if np.dtype(detail["dtype"]) != np.float32:
            raise ModelError(f"model {self.path.name} takes {np.dtype(detail['dtype'])}, not float32: "
                             "use the float MediaPipe model files")
        self.input_shape = tuple(int(s) for s in detail["shape"])
        self._input_index = detail["index"]
        self.input = np.zeros(self.input_shape, dtype=np.float32)
        details = self._interpreter.get_output_details()
        self.output_names = tuple(d["name"] for d in details)
        self.output_shapes = tuple(tuple(int(s) for s in d["shape"]) for d in details)
        self._output_indices = tuple(d["index"] for d in details)
        self.outputs = tuple(np.zeros(shape, dtype=np.float32) for shape in self.output_shapes)
        self.runs = 0

    @property
    def input_size(self) -> Tuple[int, int]:
        """``(height, width)`` of an image input (1, H, W, C)."""
        if len(self.input_shape) != 4:
            raise ModelError(f"model {self.path.name} input shape {self.input_shape} is not [1, H, W, C]")
        return self.input_shape[1], self.input_shape[2]

    def output_index(self, *, name: Optional[str] = None, size: Optional[int] = None, nth: int = 0) -> int:
        """Position in :attr:`outputs` of the output called ``name``, or of the ``nth`` output
        (in natural name order: ``Identity``, ``Identity_1``, ...) with ``size`` values.

        Raises :class:`ModelError` naming what the model has when there is no such output.
        """
        candidates = [i for i, shape in enumerate(self.output_shapes)
                      if (name is None or self.output_names[i] == name)
                      and (size is None or int(np.prod(shape)) == size)]
        candidates.sort(key=lambda i: _natural_key(self.output_names[i]))
        if nth >= len(candidates):
            have = ", ".join(f"{n} {s}" for n, s in zip(self.output_names, self.output_shapes))
            raise ModelError(f"model {self.path.name} has no output (name={name}, size={size}, nth={nth}); "
                             f"it has: {have}. Is it the right file? {fetch_hint(self.path, force=True)}")
        return candidates[nth]

    def run(self, input_array: Optional[np.ndarray] = None) -> Tuple[np.ndarray, ...]:
        """Invoke on ``input_array`` (or on :attr:`input` as it is) and return :attr:`outputs`.

        The returned buffers are this object's own and are overwritten by the next call.
        """
        if input_array is not None:
            np.copyto(self.input, np.reshape(input_array, self.input_shape), casting="same_kind")
        self._interpreter.set_tensor(self._input_index, self.input)
        self._interpreter.invoke()
        for index, buffer in zip(self._output_indices, self.outputs):
            np.copyto(buffer, self._interpreter.tensor(index)())  # the view dies here, before the next invoke
        self.runs += 1
        return self.outputs

    def describe(self) -> dict:
        return {
            "model": self.path.name,
            "model_path": str(self.path),
            "model_sha256": self.sha256,
            "input_shape": list(self.input_shape),
            "outputs": {n: list(s) for n, s in zip(self.output_names, self.output_shapes)},
            "runtime": self.runtime,
            "runtime_version": runtime_version(self.runtime),
            "threads": self.num_threads,
        }

    def __repr__(self) -> str:
        return (f"<TfliteModel model={self.path.name!r} input={list(self.input_shape)} "
                f"outputs={len(self.outputs)} runtime={self.runtime} threads={self.num_threads} runs={self.runs}>")
