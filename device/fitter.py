"""Fits the answering head off the camera loop, after every change to what was taught.

The live head (:class:`~device.head.NearestCentroidHead`) follows every example at once;
the fitted head (:mod:`device.metric`: the shared metric and its calibrated "unknown")
needs all examples together, so a thread of its own fits it from the library and the
examples not written yet, and gives it to the loop, which answers with the previous fit
meanwhile.  Requests coalesce: a burst of changes costs one fit.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable


from . import metric

log = logging.getLogger(__name__)

HEAD_KINDS = ("metric", "centroid", "knn")


class Fitter:
    """Fits ``kind`` heads on its own thread and installs them with ``install(fit, model)``.

    :param keeper: the :class:`~device.keeper.ExampleKeeper` (:meth:`~device.keeper.ExampleKeeper.training_set`).
    :param num_classes: the live head's number of classes.
    :param install: ``install(fit, model)`` from this thread; the loop drops a fit of another model.
    """

    def __init__(self, keeper, *, kind: str = "metric", sensitivity: float = metric.DEFAULT_SENSITIVITY,
                 num_classes: Callable[[], int], install: Callable[[object, object], None]) -> None:
        if kind not in HEAD_KINDS:
            raise ValueError(f"[head] kind must be one of {', '.join(HEAD_KINDS)}, not {kind!r}")
        self.keeper = keeper
        self.kind = kind
        self.sensitivity = sensitivity
        self._num_classes = num_classes
        self._install = install
        self._wake = threading.Condition()
        self._wanted = 0  # bumps on every request
        self._done = 0  # the request the last fit answered
        self._stopping = False
        self.fits = 0
        self.last_seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="teachbox-fitter", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self) -> None:
        """Something was taught or edited: fit again soon (many requests, one fit)."""
        with self._wake:
            self._wanted += 1
            self._wake.notify()

    def settle(self, timeout: float = 15.0) -> bool:
        """Wait until the requests so far are fitted and installed."""
        deadline = time.monotonic() + timeout
        with self._wake:
            wanted = self._wanted
            while self._done < wanted and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(min(left, 0.5))
            return self._done >= wanted

    def fit_now(self) -> object:
        """Fit from what is stored and taught now (this thread, or a caller's at start)."""
        model, vectors, labels, bursts = self.keeper.training_set()
        num_classes = self._num_classes()
        started = time.perf_counter()
        if self.kind == "knn":
            fitted = metric.fit_neighbours(vectors, labels, num_classes)
        elif self.kind == "centroid":
            fitted = metric.fit_cosine(vectors, labels, num_classes)
        else:
            fitted = metric.fit(vectors, labels, num_classes, bursts=bursts, sensitivity=self.sensitivity)
        self.last_seconds = time.perf_counter() - started
        self.fits += 1
        self._install(fitted, model)
        return fitted

    def _run(self) -> None:
        while True:
            with self._wake:
                if self._done >= self._wanted and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                wanted = self._wanted
            try:
                self.fit_now()
            except Exception:  # a fit that fails leaves the previous one answering
                log.exception("fitting the head failed; the box goes on with the previous fit")
            with self._wake:
                self._done = max(self._done, wanted)
                self._wake.notify_all()

    def close(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread.is_alive():
            self._thread.join(5.0)
