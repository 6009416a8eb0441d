"""Cameras behind one small interface, and a supervisor that never lets one hang the loop.

A camera has ``open()``, ``read()`` (one HxWx3 uint8 RGB frame, blocking) and
``close()``; it can be opened again after ``close()``.  Kinds:

* :class:`PiCamera` - the Pi camera through picamera2 (imported lazily);
* :class:`OpenCVCamera` - a USB webcam (index) or a video file;
* :class:`FolderCamera` - replays images in natural filename order, optionally one
  sub-folder ("source") at a time;
* :class:`SyntheticCamera` - a drawn scene with a few objects, needs no files.

:class:`CameraSupervisor` runs ``open``/``read`` in a worker thread: a camera that
stops delivering frames turns the state "offline" after a timeout and is reconnected
with exponential backoff, while the loop goes on.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .errors import CameraError, ConfigError
from .vocab import CameraState

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def natural_key(text: str):
    """Sort key that puts ``obj2__5`` before ``obj2__10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def list_images(folder: Path) -> List[Path]:
    return sorted((p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                  key=lambda p: natural_key(p.name))


def load_rgb(path: Path) -> np.ndarray:
    """Any image Pillow reads (any mode, any size) as an HxWx3 uint8 RGB array."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


class Camera:
    """The interface every camera implements.

    ``clocked``: the camera makes frames on its own clock (a sensor, a webcam) and ``read()``
    waits for the next one, so the supervisor's streaming reader keeps reading and holds the
    newest; an unclocked one (files, drawings) makes a frame when asked, so it is read one ahead.
    """

    name = "camera"
    clocked = False

    def open(self) -> None:
        """Acquire the device; may be called again after :meth:`close`."""

    def read(self) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Release the device; never raises."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class SelectableMixin:
    """A camera with several named sources (objects) that can be switched at run time."""

    sources: Sequence[str] = ()
    source: Optional[str] = None

    def select(self, source: str) -> None:
        if source not in self.sources:
            raise CameraError(f"{self.name} has no source {source!r}; it has: {', '.join(self.sources)}")
        self.source = source
        self._on_select()

    def _on_select(self) -> None:
        pass


# -- synthetic ---------------------------------------------------------------------

_SCENES: Dict[str, Tuple[str, Tuple[int, int, int]]] = {
    "empty table": ("none", (0, 0, 0)),
    "red ball": ("disc", (220, 40, 40)),
    "blue box": ("square", (40, 70, 220)),
    "green stripes": ("stripes", (40, 180, 60)),
    "yellow ring": ("ring", (235, 200, 30)),
}


class SyntheticCamera(SelectableMixin, Camera):
    """A drawn table with one of a few objects on it, jittering slightly from frame to frame.

    Needs no files and no hardware; each object looks distinct to the model, so the
    simulated box can be taught and tested anywhere.
    """

    def __init__(self, *, size: Tuple[int, int] = (240, 320), source: str = "red ball", fps: float = 30.0) -> None:
        self.name = "synthetic"
        self.size = size
        self.sources = tuple(_SCENES)
        self.fps = fps
        self.source = source if source in _SCENES else self.sources[1]
        height, width = size
        yy, xx = np.mgrid[0:height, 0:width]
        self._yy, self._xx = yy.astype(np.float32), xx.astype(np.float32)
        table = 90 + 60 * (yy / height)
        self._table = np.stack([table * 1.0, table * 0.9, table * 0.75], axis=-1).astype(np.uint8)
        self._count = 0
        self._last = 0.0

    def read(self) -> np.ndarray:
        if self.fps:
            wait = self._last + 1.0 / self.fps - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last = time.monotonic()
        self._count += 1
        shape, colour = _SCENES[self.source]
        frame = self._table.copy()
        if shape != "none":
            height, width = self.size
            dx = 10 * np.sin(self._count / 7.0)
            dy = 6 * np.cos(self._count / 11.0)
            mask = self._mask(shape, width / 2 + dx, height / 2 + dy, min(height, width) * 0.28)
            frame[mask] = colour
            frame[mask] = (frame[mask] * (0.8 + 0.2 * (self._yy[mask] / height))[:, None]).astype(np.uint8)
        return frame

    def _mask(self, shape: str, cx: float, cy: float, radius: float) -> np.ndarray:
        dx, dy = self._xx - cx, self._yy - cy
        if shape == "disc":
            return dx * dx + dy * dy < radius * radius
        if shape == "ring":
            d2 = dx * dx + dy * dy
            return (d2 < radius * radius) & (d2 > (0.55 * radius) ** 2)
        if shape == "square":
            return (np.abs(dx) < radius * 0.9) & (np.abs(dy) < radius * 0.9)
        inside = (np.abs(dx) < radius * 1.1) & (np.abs(dy) < radius * 0.9)
        return inside & ((self._xx // 12) % 2 == 0)


# -- image folder --------------------------------------------------------------------


class FolderCamera(SelectableMixin, Camera):
    """Replays images in natural filename order, looping.

    ``path`` holds images, or sub-folders of images (one per object): then each
    sub-folder is a source and :meth:`select` switches between them.  Decoded frames
    are cached, so a replay costs no decoding after the first round.
    """

    def __init__(self, path, *, fps: float = 0.0, cache_limit: int = 4096) -> None:
        self.path = Path(path)
        self.name = f"folder:{self.path}"
        self.fps = fps
        self.cache_limit = cache_limit
        if not self.path.is_dir():
            raise CameraError(f"image folder {str(self.path)!r} does not exist")
        self._files: Dict[str, List[Path]] = {}
        own = list_images(self.path)
        if own:
            self._files[self.path.name] = own
        for sub in sorted((p for p in self.path.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)):
            images = list_images(sub)
            if images:
                self._files[sub.name] = images
        if not self._files:
            raise CameraError(f"image folder {str(self.path)!r} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self.sources = tuple(self._files)
        self.source = self.sources[0]
        self._cache: Dict[Path, np.ndarray] = {}
        self._index = 0
        self._last = 0.0
        self.current_file: Optional[Path] = None

    def _on_select(self) -> None:
        self._index = 0

    def seek(self, index: int) -> None:
        """Make the next frame the ``index``-th image of the current source."""
        self._index = index % len(self._files[self.source])

    def read(self) -> np.ndarray:
        if self.fps:
            wait = self._last + 1.0 / self.fps - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last = time.monotonic()
        files = self._files[self.source]
        path = files[self._index % len(files)]
        self._index = (self._index + 1) % len(files)
        frame = self._cache.get(path)
        if frame is None:
            try:
                frame = load_rgb(path)
            except OSError as exc:
                raise CameraError(f"cannot read image {str(path)!r}: {exc}") from None
            if len(self._cache) < self.cache_limit:
                self._cache[path] = frame
        self.current_file = path
        return frame


# -- OpenCV -------------------------------------------------------------------------------


def quiet_opencv(cv2) -> None:
    """Keep OpenCV's own log to errors, unless teachbox logs at debug level.

    Opening a webcam that is not there makes OpenCV print its backend probing ("[ WARN:0@0.02]
    global cap_v4l.cpp ... can't open camera by index") on every reconnection attempt;
    teachbox says once itself what is wrong and what to do.
    """
    levels = getattr(getattr(cv2, "utils", None), "logging", None)
    if levels is None:  # an OpenCV without the logging API
        return
    debugging = log.isEnabledFor(logging.DEBUG)
    levels.setLogLevel(levels.LOG_LEVEL_WARNING if debugging else levels.LOG_LEVEL_ERROR)


class OpenCVCamera(Camera):
    """A USB webcam (``device`` is an index) or a video file (``device`` is a path; loops)."""

    def __init__(self, device, *, size: Optional[Tuple[int, int]] = None) -> None:
        self.device = device
        self.size = size
        self.name = f"opencv:{device}" if isinstance(device, int) else f"video:{device}"
        self.clocked = isinstance(device, int)  # a webcam: reading it drains its queue of stale frames
        self._capture = None
        self._rgb: Optional[np.ndarray] = None

    def open(self) -> None:
        try:
            import cv2
        except ImportError:
            raise CameraError(
                f"{self.name} needs OpenCV: pip install opencv-python-headless"
            ) from None
        self._cv2 = cv2
        quiet_opencv(cv2)
        if not isinstance(self.device, int) and not Path(self.device).is_file():
            raise CameraError(f"video file {str(self.device)!r} does not exist")
        capture = cv2.VideoCapture(self.device)
        if not capture.isOpened():
            capture.release()
            raise CameraError(self._cannot_open())
        if self.size and isinstance(self.device, int):
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[0])
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[1])
        self._capture = capture

    def _cannot_open(self) -> str:
        if isinstance(self.device, int):
            return (f"no webcam at index {self.device} ({self.name} cannot be opened): plug one in, "
                    "or use --camera synthetic or --camera folder:PATH")
        return f"{self.name} cannot be opened: OpenCV cannot read {str(self.device)!r} as a video"

    def read(self) -> np.ndarray:
        if self._capture is None:
            raise CameraError(f"{self.name} is not open")
        ok, bgr = self._capture.read()
        if not ok and not isinstance(self.device, int):  # end of a video file: start again
            self._capture.set(self._cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._capture.read()
        if not ok or bgr is None:
            raise CameraError(f"{self.name} delivered no frame")
        return self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._capture is not None:
            try:
                self._capture.release()
            finally:
                self._capture = None


# -- Raspberry Pi camera -----------------------------------------------------------------------


def full_field_mode(sensor_modes: Sequence[dict], sensor_resolution: Tuple[int, int]) -> Optional[dict]:
    """The smallest (fastest) sensor mode that still sees the whole sensor, not a crop.

    Without this, a small main stream can make libcamera pick a cropped mode, and the
    box would see a zoomed-in part of the scene.
    """
    full_width, full_height = sensor_resolution
    candidates = []
    for mode in sensor_modes:
        crop = mode.get("crop_limits")
        if crop is None:
            continue
        _, _, width, height = crop
        if width >= full_width * 0.98 and height >= full_height * 0.98:
            candidates.append(mode)
    if not candidates:
        return None
    return min(candidates, key=lambda m: m["size"][0] * m["size"][1])


class PiCamera(Camera):
    """The Raspberry Pi camera via picamera2, delivering model-sized RGB from the ISP.

    The main stream is configured at the model's input size in ``BGR888``, which
    numpy sees as R,G,B (``swap_rb`` corrects a sensor/driver that delivers B,G,R).
    A full-field sensor mode is selected so the picture is not cropped.
    """

    resizable = True  # the supervisor may reopen it at another size (the box looks at something else)
    clocked = True

    def __init__(self, *, size: Tuple[int, int] = (224, 224), swap_rb: bool = False, index: int = 0) -> None:
        self.size = size
        self.swap_rb = swap_rb
        self.index = index
        self.name = "picamera2"
        self._picam = None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise CameraError(
                "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install python3-picamera2` "
                "and make the venv with --system-site-packages"
            ) from None
        if not Picamera2.global_camera_info():
            raise CameraError("no Pi camera is connected (check the ribbon cable and that it is enabled)")
        picam = Picamera2(self.index)
        try:
            height, width = self.size
            options = {"main": {"size": (width, height), "format": "BGR888"}, "buffer_count": 2,
                       "queue": False}
            mode = full_field_mode(picam.sensor_modes, picam.sensor_resolution)
            if mode is not None:
                options["sensor"] = {"output_size": mode["size"], "bit_depth": mode["bit_depth"]}
            picam.configure(picam.create_video_configuration(**options))
            picam.start()
        except Exception as exc:
            picam.close()
            raise CameraError(f"the Pi camera could not be started: {exc}") from None
        self._picam = picam

    def read(self) -> np.ndarray:
        if self._picam is None:
            raise CameraError("the Pi camera is not open")
        frame = self._picam.capture_array("main")
        if frame.shape[-1] == 4:
            frame = frame[..., :3]
        if self.swap_rb:
            frame = frame[..., ::-1]
        return frame

    def close(self) -> None:
        picam, self._picam = self._picam, None
        if picam is None:
            return
        try:
            picam.stop()
            picam.close()
        except Exception as exc:  # the device may be gone; closing must never raise
            log.debug("closing the Pi camera: %s", exc)


def is_raspberry_pi(model_file: Path = Path("/proc/device-tree/model")) -> bool:
    try:
        return "Raspberry Pi" in model_file.read_text(errors="replace")
    except OSError:
        return False


def pi_camera_available() -> Tuple[bool, str]:
    """``(True, "")`` when picamera2 is importable and sees a camera, else ``(False, why)``."""
    try:
        from picamera2 import Picamera2
    except ImportError:
        return False, "picamera2 is not installed"
    try:
        if Picamera2.global_camera_info():
            return True, ""
    except Exception as exc:  # libcamera not usable on this machine
        return False, f"libcamera is not usable ({exc})"
    return False, "no Pi camera is connected"


def camera_specs() -> Tuple[Tuple[str, str], ...]:
    """Every camera spec teachbox accepts, with what it means (``auto`` is resolved by the app)."""
    return (
        ("auto", "the Pi camera if there is one, else the synthetic scene (on a Raspberry Pi always the Pi "
                 "camera; with --simulate always the synthetic scene)"),
        ("picamera2", "the Pi camera"),
        ("opencv:N", "USB webcam number N, e.g. opencv:0"),
        ("video:PATH", "a video file, looped"),
        ("folder:PATH", "the images in folder PATH in natural filename order (one subfolder per object)"),
        ("synthetic or synthetic:SCENE", f"a drawn scene, SCENE one of {', '.join(_SCENES)} (default red ball)"),
    )


def camera_specs_help() -> str:
    """The specs and their meanings in one line, for ``--help``."""
    return "; ".join(f"{spec} = {meaning}" for spec, meaning in camera_specs())


def make_camera(spec: str, *, model_size: Tuple[int, int] = (224, 224), swap_rb: bool = False) -> Camera:
    """A camera from a spec: ``picamera2``, ``opencv:N``, ``video:PATH``, ``folder:PATH``, ``synthetic``."""
    kind, _, arg = spec.partition(":")
    if kind == "picamera2" and not arg:
        return PiCamera(size=model_size, swap_rb=swap_rb)
    if kind == "opencv":
        try:
            return OpenCVCamera(int(arg or 0))
        except ValueError:
            raise ConfigError(f"camera {spec!r}: opencv:N needs a webcam number, e.g. opencv:0") from None
    if kind == "video" and arg:
        return OpenCVCamera(arg)
    if kind == "folder" and arg:
        return FolderCamera(arg, fps=15.0)
    if kind == "synthetic":
        if arg and arg not in _SCENES:
            raise ConfigError(f"camera {spec!r}: the synthetic scene has {', '.join(_SCENES)}")
        return SyntheticCamera(source=arg or "red ball")
    raise ConfigError(f"camera {spec!r} is not known; use one of: {', '.join(s for s, _ in camera_specs())}")


# -- supervision ----------------------------------------------------------------------------

ONLINE, OFFLINE, STARTING = CameraState.ONLINE, CameraState.OFFLINE, CameraState.STARTING


class _Grabs:
    """Numbers the frames: every read of the camera takes the next number when it begins."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.begun = 0

    def begin(self) -> int:
        with self.lock:
            self.begun += 1
            return self.begun


class _Reader:
    """One worker thread that opens a camera and reads a frame whenever asked."""

    def __init__(self, camera: Camera, grabs: _Grabs) -> None:
        self.camera = camera
        self.grabs = grabs
        self.requests: "queue.Queue[bool]" = queue.Queue(maxsize=1)
        self.results: "queue.Queue[tuple]" = queue.Queue(maxsize=1)
        self.abandoned = False
        self.thread = threading.Thread(target=self._run, name=f"camera-{camera.name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.camera.close()  # whatever an abandoned reader left open
            self.camera.open()
        except Exception as exc:
            self.results.put(("error", exc, 0))
            return
        while self.requests.get() and not self.abandoned:
            try:
                seq = self.grabs.begin()
                self.results.put(("frame", self.camera.read(), seq))
            except Exception as exc:
                self.results.put(("error", exc, 0))
                break
        if not self.abandoned:  # an abandoned reader must not close what its successor opened
            self.camera.close()

    def take(self, timeout: float) -> tuple:
        """``(kind, frame or error, seq)`` of the frame asked for; :class:`queue.Empty` after ``timeout``."""
        self.requests.put(True)
        return self.results.get(timeout=timeout)

    def abandon(self) -> None:
        self.abandoned = True
        try:
            self.requests.put_nowait(False)
        except queue.Full:
            pass


class _Streamer:
    """A worker thread that reads frames ahead of the loop: capture overlaps the model's work.

    A clocked camera is read all the time and the newest frame is held (older ones are
    dropped, as picamera2 drops frames nobody asked for); an unclocked one is read one
    frame ahead, so nothing is drawn or decoded that is never looked at.
    """

    def __init__(self, camera: Camera, grabs: _Grabs) -> None:
        self.camera = camera
        self.grabs = grabs
        self._ready = threading.Condition()
        self._held: Optional[tuple] = None  # (kind, frame or error, seq), not yet taken
        self.abandoned = False
        self.thread = threading.Thread(target=self._run, name=f"camera-{camera.name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.camera.close()
            self.camera.open()
        except Exception as exc:
            self._hold(("error", exc, 0))
            return
        clocked = bool(getattr(self.camera, "clocked", False))
        while not self.abandoned:
            if not clocked:
                with self._ready:
                    while self._held is not None and not self.abandoned:
                        self._ready.wait()
                if self.abandoned:
                    break
            try:
                seq = self.grabs.begin()
                frame = self.camera.read()
            except Exception as exc:
                self._hold(("error", exc, 0))
                break
            self._hold(("frame", frame, seq))
        if not self.abandoned:
            self.camera.close()

    def _hold(self, item: tuple) -> None:
        with self._ready:
            if self._held is None or self._held[0] != "error":  # an error is never overwritten
                self._held = item
            self._ready.notify_all()

    def take(self, timeout: float) -> tuple:
        """The newest frame not taken yet (waits for one); :class:`queue.Empty` after ``timeout``."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._held is not None, timeout):
                raise queue.Empty
            item, self._held = self._held, None
            self._ready.notify_all()
            return item

    def abandon(self) -> None:
        with self._ready:
            self.abandoned = True
            self._ready.notify_all()


class CameraSupervisor:
    """Reads frames with a timeout; on failure goes offline and reconnects with backoff.

    :param camera: the camera to supervise (reopened on reconnect).
    :param timeout: seconds a frame may take before the camera counts as offline.
    :param open_timeout: seconds opening may take (the Pi camera needs about one).
    :param backoff: first and longest wait between reconnection attempts.
    """

    def __init__(self, camera: Camera, *, timeout: float = 2.0, open_timeout: float = 10.0,
                 backoff: Tuple[float, float] = (0.5, 30.0), sleep: Callable[[float], None] = time.sleep) -> None:
        self.camera = camera
        self.timeout = timeout
        self.open_timeout = open_timeout
        self.backoff = backoff
        self._sleep = sleep
        self._reader = None  # a _Reader (frames on request) or a _Streamer (frames read ahead)
        self._grabs = _Grabs()
        self.streaming = False
        self.last_seq = 0  # the number of the frame read() gave last
        self._fresh = True
        self._retry_at = 0.0
        self._delay = backoff[0]
        self.state = STARTING
        self.error: Optional[str] = None
        self.frames = 0
        self.reconnects = 0
        self._wanted_size: Optional[Tuple[int, int]] = None

    def __repr__(self) -> str:
        return f"<CameraSupervisor {self.camera.name} state={self.state} frames={self.frames}>"

    def read(self) -> Optional[np.ndarray]:
        """The next frame, or ``None`` while the camera is offline (waits at most ~timeout)."""
        if self._wanted_size is not None:
            self._resize()
        if self._reader is None:
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                self._sleep(min(wait, self.timeout))
                return None
            self._reader = (_Streamer if self.streaming else _Reader)(self.camera, self._grabs)
            self._fresh = True
        reader = self._reader
        try:
            kind, value, seq = reader.take(self.open_timeout if self._fresh else self.timeout)
        except queue.Empty:
            self._fail(f"{self.camera.name} delivered no frame for {self.timeout:g} s")
            return None
        if kind == "error":
            self._fail(str(value))
            return None
        self._fresh = False
        if self.state != ONLINE:
            log.info("camera %s is online", self.camera.name)
        self.state, self.error = ONLINE, None
        self._delay = self.backoff[0]
        self.frames += 1
        self.last_seq = seq
        return value

    def next_seq(self) -> int:
        """The number the next frame whose read begins from now on gets (teaching takes frames from it)."""
        with self._grabs.lock:
            return self._grabs.begun + 1

    def stream(self, on: bool = True) -> None:
        """Read frames ahead of :meth:`read` (``run``'s mode: capture overlaps inference) or only when asked."""
        if on == self.streaming:
            return
        self.streaming = on
        self.close()  # the next read starts the other kind of reader (reopening the camera)

    def want_size(self, size: Tuple[int, int]) -> None:
        """Frames of ``(height, width)`` from now on, where the camera can give them (the Pi camera's ISP)."""
        if getattr(self.camera, "resizable", False) and tuple(size) != tuple(self.camera.size):
            self._wanted_size = tuple(size)

    def _resize(self) -> None:
        size, self._wanted_size = self._wanted_size, None
        if self._reader is not None:  # stop reading; the next reader closes the camera and opens it at the size
            self._reader.abandon()
            self._reader.thread.join(timeout=self.timeout)
            self._reader = None
        self.camera.size = size
        log.info("camera %s: frames of %dx%d from now on", self.camera.name, size[1], size[0])

    def _fail(self, why: str) -> None:
        if self.state != OFFLINE or why != self.error:
            log.warning("camera offline: %s; retrying in %.1f s", why, self._delay)
        else:  # said once already
            log.debug("camera %s still offline (%s); retrying in %.1f s", self.camera.name, why, self._delay)
        self.state, self.error = OFFLINE, why
        if self._reader is not None:
            self._reader.abandon()
            self._reader = None
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self.backoff[1])
        self.reconnects += 1

    def close(self) -> None:
        if self._reader is not None:
            self._reader.abandon()
            self._reader.thread.join(timeout=self.timeout)
            self._reader = None

    # -- what a client of the box may see and change --------------------------------------
    @property
    def name(self) -> str:
        return self.camera.name

    @property
    def sources(self) -> Tuple[str, ...]:
        """The named sources (objects) this camera can switch between; empty for most cameras."""
        return tuple(getattr(self.camera, "sources", ()))

    @property
    def source(self) -> Optional[str]:
        return getattr(self.camera, "source", None)

    def select(self, source: str) -> None:
        """Switch to ``source``; :class:`CameraError` names the sources when there is no such one."""
        if not self.sources:
            raise CameraError(f"the camera {self.camera.name} has no sources to switch between")
        self.camera.select(source)
