"""Cameras (synthetic, image folder, video file, Pi camera) and the supervisor."""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from device.camera import (
    OFFLINE,
    ONLINE,
    STARTING,
    Camera,
    CameraSupervisor,
    FolderCamera,
    OpenCVCamera,
    PiCamera,
    SyntheticCamera,
    full_field_mode,
    make_camera,
    natural_key,
)
from device.errors import CameraError, ConfigError

# A hang guard for supervisor calls: far longer than any timeout used here, only
# there so a regression fails the test instead of freezing the whole run.
HANG_GUARD = 20.0


def solid(colour, size=(8, 12)) -> np.ndarray:
    frame = np.zeros((size[0], size[1], 3), dtype=np.uint8)
    frame[:] = colour
    return frame


def save(path: Path, colour, size=(8, 12), mode="RGB") -> Path:
    image = Image.fromarray(solid(colour, size))
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path)
    return path


# -- synthetic ---------------------------------------------------------------------------


def test_synthetic_frames_are_rgb_uint8():
    camera = SyntheticCamera(size=(120, 160), fps=0)
    camera.open()
    frame = camera.read()
    assert frame.shape == (120, 160, 3)
    assert frame.dtype == np.uint8
    camera.close()


def test_synthetic_sources_can_be_switched_and_look_different():
    camera = SyntheticCamera(fps=0)
    assert "red ball" in camera.sources and "blue box" in camera.sources
    means = {}
    for source in camera.sources:
        camera.select(source)
        assert camera.source == source
        means[source] = camera.read().reshape(-1, 3).astype(float).mean(axis=0)
    names = list(means)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(means[a] - means[b]).sum() > 3, (a, b)
    # The red ball is red, the blue box is blue.
    camera.select("red ball")
    red = camera.read().reshape(-1, 3).astype(float).mean(axis=0)
    camera.select("blue box")
    blue = camera.read().reshape(-1, 3).astype(float).mean(axis=0)
    assert red[0] > blue[0] and blue[2] > red[2]


def test_synthetic_unknown_source_is_refused():
    camera = SyntheticCamera(fps=0)
    with pytest.raises(CameraError, match="purple"):
        camera.select("purple elephant")


def test_synthetic_frames_jitter():
    camera = SyntheticCamera(fps=0)
    frames = [camera.read() for _ in range(5)]
    assert any(not np.array_equal(frames[0], f) for f in frames[1:])


# -- image folder ------------------------------------------------------------------------


def test_natural_key_orders_numbers_numerically():
    names = ["obj2__10.png", "obj2__5.png", "obj10__0.png", "obj2__0.png"]
    assert sorted(names, key=natural_key) == ["obj2__0.png", "obj2__5.png", "obj2__10.png", "obj10__0.png"]


def test_folder_replays_in_natural_order_and_loops(tmp_path):
    save(tmp_path / "obj2__10.png", (0, 0, 255))
    save(tmp_path / "obj2__5.png", (0, 255, 0))
    save(tmp_path / "obj2__0.png", (255, 0, 0))
    (tmp_path / "notes.txt").write_text("not an image")
    camera = FolderCamera(tmp_path)
    camera.open()
    seen = []
    for _ in range(4):
        frame = camera.read()
        seen.append((tuple(int(v) for v in frame[0, 0]), camera.current_file.name))
    assert seen == [
        ((255, 0, 0), "obj2__0.png"),
        ((0, 255, 0), "obj2__5.png"),
        ((0, 0, 255), "obj2__10.png"),
        ((255, 0, 0), "obj2__0.png"),
    ]
    camera.close()


def test_folder_sub_folders_are_sources(tmp_path):
    for name, colour in (("obj10", (0, 0, 255)), ("obj2", (255, 0, 0)), ("obj3", (0, 255, 0))):
        (tmp_path / name).mkdir()
        save(tmp_path / name / "a.png", colour)
        save(tmp_path / name / "b.png", tuple(c // 2 for c in colour))
    (tmp_path / "empty").mkdir()
    camera = FolderCamera(tmp_path)
    assert camera.sources == ("obj2", "obj3", "obj10")  # natural order, empty folder left out
    assert camera.source == "obj2"
    assert tuple(camera.read()[0, 0]) == (255, 0, 0)
    camera.select("obj10")
    assert tuple(camera.read()[0, 0]) == (0, 0, 255)  # starts at the first image of the source
    assert tuple(camera.read()[0, 0]) == (0, 0, 127)
    with pytest.raises(CameraError, match="obj99"):
        camera.select("obj99")


def test_folder_seek(tmp_path):
    for index in range(5):
        save(tmp_path / f"img{index}.png", (index * 50, 0, 0))
    camera = FolderCamera(tmp_path)
    camera.seek(3)
    assert camera.read()[0, 0, 0] == 150
    assert camera.read()[0, 0, 0] == 200
    assert camera.read()[0, 0, 0] == 0  # loops
    camera.seek(7)  # wraps around
    assert camera.read()[0, 0, 0] == 100


def test_folder_reads_any_pillow_format_as_rgb(tmp_path):
    save(tmp_path / "1.png", (200, 10, 10))
    save(tmp_path / "2.jpg", (10, 200, 10))
    save(tmp_path / "3.png", (128, 128, 128), mode="L")
    save(tmp_path / "4.png", (10, 10, 200), mode="RGBA")
    save(tmp_path / "5.bmp", (200, 200, 10))
    save(tmp_path / "6.GIF", (0, 204, 204), mode="P")  # a web-palette colour
    camera = FolderCamera(tmp_path)
    expected = [(200, 10, 10), (10, 200, 10), (128, 128, 128), (10, 10, 200), (200, 200, 10), (0, 204, 204)]
    for colour in expected:
        frame = camera.read()
        assert frame.ndim == 3 and frame.shape[2] == 3, camera.current_file
        assert frame.dtype == np.uint8
        assert frame.shape[:2] == (8, 12)
        centre = frame[4, 6].astype(int)
        assert np.abs(centre - np.array(colour)).max() <= 12, (camera.current_file, centre, colour)


def test_folder_with_unreadable_image_raises_camera_error(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"this is not a png")
    camera = FolderCamera(tmp_path)
    with pytest.raises(CameraError, match="broken.png"):
        camera.read()


def test_empty_folder_is_refused(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(CameraError, match="no images"):
        FolderCamera(tmp_path)


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(CameraError, match="does not exist"):
        FolderCamera(tmp_path / "missing")


def test_folder_camera_on_coil100(coil100):
    camera = FolderCamera(coil100)
    assert "obj002" in camera.sources
    camera.select("obj002")
    frame = camera.read()
    assert frame.shape == (128, 128, 3)
    assert camera.current_file.name == "obj2__0.png"
    camera.read()
    assert camera.current_file.name == "obj2__5.png"


# -- OpenCV video file -------------------------------------------------------------------------


def write_video(path: Path, bgr_colours, size=(48, 64)) -> Path:
    cv2 = pytest.importorskip("cv2")
    height, width = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (width, height))
    assert writer.isOpened()
    for colour in bgr_colours:
        writer.write(solid(colour, size))
    writer.release()
    return path


def test_video_frames_come_as_rgb(tmp_path):
    video = write_video(tmp_path / "red.avi", [(0, 0, 255)] * 2)  # pure red in OpenCV's BGR
    camera = OpenCVCamera(str(video))
    camera.open()
    try:
        frame = camera.read()
    finally:
        camera.close()
    assert frame.shape == (48, 64, 3)
    assert frame.dtype == np.uint8
    red, green, blue = frame.reshape(-1, 3).astype(float).mean(axis=0)
    assert red > 200
    assert blue < 50
    assert green < 50


def test_video_loops_at_end_of_file(tmp_path):
    # red, green, blue in BGR order
    video = write_video(tmp_path / "rgb.avi", [(0, 0, 255), (0, 255, 0), (255, 0, 0)])
    camera = make_camera(f"video:{video}")
    assert isinstance(camera, OpenCVCamera)
    camera.open()
    try:
        dominant = [int(np.argmax(camera.read().reshape(-1, 3).mean(axis=0))) for _ in range(7)]
    finally:
        camera.close()
    assert dominant == [0, 1, 2, 0, 1, 2, 0]


def test_video_can_be_reopened_after_close(tmp_path):
    video = write_video(tmp_path / "red.avi", [(0, 0, 255)])
    camera = OpenCVCamera(str(video))
    camera.open()
    camera.close()
    camera.close()  # closing twice is harmless
    camera.open()
    try:
        assert camera.read().shape == (48, 64, 3)
    finally:
        camera.close()


def test_missing_video_file_fails_on_open(tmp_path):
    camera = OpenCVCamera(str(tmp_path / "missing.avi"))
    with pytest.raises(CameraError, match="does not exist"):
        camera.open()


def test_not_a_video_fails_on_open(tmp_path):
    pytest.importorskip("cv2")
    path = tmp_path / "fake.avi"
    path.write_bytes(b"definitely not a video")
    with pytest.raises(CameraError):
        OpenCVCamera(str(path)).open()


def test_read_before_open_is_a_camera_error(tmp_path):
    with pytest.raises(CameraError, match="not open"):
        OpenCVCamera(str(tmp_path / "x.avi")).read()


# -- make_camera ---------------------------------------------------------------------------


def test_make_camera_specs(tmp_path):
    save(tmp_path / "a.png", (1, 2, 3))
    synthetic = make_camera("synthetic")
    assert isinstance(synthetic, SyntheticCamera)
    assert make_camera("synthetic:blue box").source == "blue box"
    folder = make_camera(f"folder:{tmp_path}")
    assert isinstance(folder, FolderCamera)
    assert folder.path == tmp_path
    video = make_camera(f"video:{tmp_path / 'clip.avi'}")
    assert isinstance(video, OpenCVCamera)
    assert video.device == str(tmp_path / "clip.avi")
    webcam = make_camera("opencv:0")
    assert isinstance(webcam, OpenCVCamera)
    assert webcam.device == 0 and isinstance(webcam.device, int)
    assert make_camera("opencv:2").device == 2
    pi = make_camera("picamera2", model_size=(160, 160), swap_rb=True)
    assert isinstance(pi, PiCamera)
    assert pi.size == (160, 160) and pi.swap_rb is True


@pytest.mark.parametrize("spec", ["webcam", "opencv:front", "folder:", "video:", "", "picamera2:1"])
def test_make_camera_bad_spec(spec):
    with pytest.raises(ConfigError):
        make_camera(spec)


def test_make_camera_folder_that_does_not_exist(tmp_path):
    with pytest.raises(CameraError):
        make_camera(f"folder:{tmp_path / 'missing'}")


# -- Pi camera ------------------------------------------------------------------------------

_SENSOR_MODES = [
    {"size": (1640, 1232), "crop_limits": (0, 0, 3280, 2464), "bit_depth": 10},
    {"size": (1920, 1080), "crop_limits": (680, 692, 1920, 1080), "bit_depth": 10},
    {"size": (3280, 2464), "crop_limits": (0, 0, 3280, 2464), "bit_depth": 10},
    {"size": (640, 480), "crop_limits": (1000, 752, 1280, 960), "bit_depth": 10},
]


def test_full_field_mode_is_the_smallest_uncropped_mode():
    mode = full_field_mode(_SENSOR_MODES, (3280, 2464))
    assert mode["size"] == (1640, 1232)


def test_full_field_mode_ignores_order():
    mode = full_field_mode(list(reversed(_SENSOR_MODES)), (3280, 2464))
    assert mode["size"] == (1640, 1232)


def test_full_field_mode_none_when_all_modes_crop():
    cropped = [m for m in _SENSOR_MODES if m["crop_limits"][2] < 3280]
    assert full_field_mode(cropped, (3280, 2464)) is None
    assert full_field_mode([], (3280, 2464)) is None


def test_full_field_mode_skips_modes_without_crop_limits():
    modes = [{"size": (320, 240), "bit_depth": 8}] + _SENSOR_MODES
    assert full_field_mode(modes, (3280, 2464))["size"] == (1640, 1232)


def test_pi_camera_without_picamera2_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    camera = PiCamera()
    with pytest.raises(CameraError, match="apt install python3-picamera2"):
        camera.open()


class FakePicamera2:
    """Just enough of picamera2.Picamera2 to drive PiCamera without hardware."""

    cameras = [{"Model": "imx219"}]
    fail_start = False
    instances: list = []

    def __init__(self, index=0):
        self.index = index
        self.sensor_modes = _SENSOR_MODES
        self.sensor_resolution = (3280, 2464)
        self.config = None
        self.started = self.stopped = self.closed = False
        type(self).instances.append(self)

    @classmethod
    def global_camera_info(cls):
        return cls.cameras

    def create_video_configuration(self, **options):
        return dict(options)

    def configure(self, config):
        self.config = config

    def start(self):
        if self.fail_start:
            raise RuntimeError("camera is busy")
        self.started = True

    def capture_array(self, stream):
        assert stream == "main"
        width, height = self.config["main"]["size"]
        frame = np.zeros((height, width, 4), dtype=np.uint8)
        frame[..., 0], frame[..., 1], frame[..., 2], frame[..., 3] = 200, 100, 10, 255
        return frame

    def stop(self):
        self.stopped = True

    def close(self):
        self.closed = True


@pytest.fixture
def fake_picamera2(monkeypatch):
    import types

    module = types.ModuleType("picamera2")
    module.Picamera2 = type("Picamera2", (FakePicamera2,), {"instances": []})
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return module.Picamera2


def test_pi_camera_configures_model_size_and_full_field(fake_picamera2):
    camera = PiCamera(size=(120, 160))
    camera.open()
    picam = fake_picamera2.instances[-1]
    assert picam.started
    assert picam.config["main"] == {"size": (160, 120), "format": "BGR888"}
    assert picam.config["sensor"] == {"output_size": (1640, 1232), "bit_depth": 10}
    frame = camera.read()
    assert frame.shape == (120, 160, 3)  # the padding channel is dropped
    assert tuple(frame[0, 0]) == (200, 100, 10)
    camera.close()
    assert picam.stopped and picam.closed
    camera.close()  # closing twice is harmless


def test_pi_camera_swap_rb(fake_picamera2):
    camera = PiCamera(size=(120, 160), swap_rb=True)
    camera.open()
    assert tuple(camera.read()[0, 0]) == (10, 100, 200)
    camera.close()


def test_pi_camera_not_connected(fake_picamera2):
    fake_picamera2.cameras = []
    with pytest.raises(CameraError, match="no Pi camera"):
        PiCamera().open()


def test_pi_camera_start_failure_is_a_camera_error_and_releases(fake_picamera2):
    fake_picamera2.fail_start = True
    camera = PiCamera()
    with pytest.raises(CameraError, match="camera is busy"):
        camera.open()
    assert fake_picamera2.instances[-1].closed
    with pytest.raises(CameraError, match="not open"):
        camera.read()


def test_pi_camera_read_before_open():
    with pytest.raises(CameraError, match="not open"):
        PiCamera().read()


# -- supervisor -------------------------------------------------------------------------------


class BlockingCamera(Camera):
    """Delivers ``good`` frames, then blocks in read() until released."""

    name = "blocking"

    def __init__(self, good: int = 0) -> None:
        self.good = good
        self.release = threading.Event()
        self.reads = 0

    def read(self):
        self.reads += 1
        if self.reads <= self.good:
            return solid((10, 20, 30))
        self.release.wait()
        raise CameraError("released")


class FlakyCamera(Camera):
    """``fail_opens`` failing opens, then ``fail_reads`` failing reads, then frames."""

    name = "flaky"

    def __init__(self, *, fail_opens: int = 0, fail_reads: int = 0) -> None:
        self.fail_opens = fail_opens
        self.fail_reads = fail_reads
        self.opens = 0
        self.closes = 0
        self.reads = 0

    def open(self):
        self.opens += 1
        if self.opens <= self.fail_opens:
            raise CameraError(f"cable unplugged (open {self.opens})")

    def read(self):
        self.reads += 1
        if self.reads <= self.fail_reads:
            raise CameraError(f"sensor glitch (read {self.reads})")
        return solid((40, 50, 60))

    def close(self):
        self.closes += 1


def guarded(function, *args):
    """Run ``function`` in a thread; fail (instead of hanging the run) if it never returns."""
    box = {}

    def target():
        box["result"] = function(*args)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_GUARD)
    assert not thread.is_alive(), f"{function} hung"
    return box["result"]


def read_until_frame(supervisor, attempts=200):
    for _ in range(attempts):
        frame = guarded(supervisor.read)
        if frame is not None:
            return frame
    pytest.fail(f"no frame after {attempts} reads: {supervisor!r} error={supervisor.error}")


@pytest.fixture(params=[False, True], ids=["frames on request", "frames read ahead"])
def streaming(request):
    """Every supervisor test runs both ways: as ``step()`` reads (on request) and as ``run()`` reads (ahead)."""
    return request.param


def test_supervisor_delivers_frames_and_goes_online(streaming):
    supervisor = CameraSupervisor(SyntheticCamera(size=(30, 40), fps=0), timeout=1.0, open_timeout=5.0)
    supervisor.stream(streaming)
    assert supervisor.state == STARTING
    frame = guarded(supervisor.read)
    assert frame.shape == (30, 40, 3)
    assert supervisor.state == ONLINE
    assert supervisor.error is None
    guarded(supervisor.read)
    assert supervisor.frames == 2
    supervisor.close()


def test_supervisor_read_times_out_on_a_hung_camera(streaming):
    camera = BlockingCamera(good=1)
    supervisor = CameraSupervisor(camera, timeout=0.2, open_timeout=0.5, backoff=(0.05, 0.1))
    supervisor.stream(streaming)
    try:
        assert guarded(supervisor.read) is not None
        assert supervisor.state == ONLINE
        assert guarded(supervisor.read) is None  # returns instead of hanging the loop
        assert supervisor.state == OFFLINE
        assert supervisor.error and "no frame" in supervisor.error
        assert supervisor.reconnects == 1
    finally:
        camera.release.set()
        supervisor.close()


def test_supervisor_first_frame_times_out_on_a_hung_camera(streaming):
    camera = BlockingCamera(good=0)
    supervisor = CameraSupervisor(camera, timeout=0.2, open_timeout=0.5, backoff=(0.05, 0.1))
    supervisor.stream(streaming)
    try:
        assert guarded(supervisor.read) is None
        assert supervisor.state == OFFLINE
        assert supervisor.error
        # The loop keeps going: further reads return (None while offline).
        for _ in range(3):
            assert guarded(supervisor.read) is None
        assert supervisor.state == OFFLINE
    finally:
        camera.release.set()
        supervisor.close()


def test_supervisor_read_error_goes_offline(streaming):
    camera = FlakyCamera(fail_reads=10 ** 6)
    supervisor = CameraSupervisor(camera, timeout=2.0, open_timeout=5.0, backoff=(0.05, 0.1))
    supervisor.stream(streaming)
    assert guarded(supervisor.read) is None
    assert supervisor.state == OFFLINE
    assert "sensor glitch" in supervisor.error
    supervisor.close()


def test_supervisor_recovers_after_read_errors(streaming):
    camera = FlakyCamera(fail_reads=2)
    supervisor = CameraSupervisor(camera, timeout=2.0, open_timeout=5.0, backoff=(0.05, 0.1))
    supervisor.stream(streaming)
    assert guarded(supervisor.read) is None
    assert supervisor.state == OFFLINE
    frame = read_until_frame(supervisor)
    assert tuple(frame[0, 0]) == (40, 50, 60)
    assert supervisor.state == ONLINE
    assert supervisor.error is None
    assert supervisor.reconnects == 2
    assert camera.opens == 3  # reopened after each failure
    supervisor.close()


def test_supervisor_retries_a_failing_open(streaming):
    camera = FlakyCamera(fail_opens=2)
    supervisor = CameraSupervisor(camera, timeout=2.0, open_timeout=5.0, backoff=(0.05, 0.1))
    supervisor.stream(streaming)
    assert guarded(supervisor.read) is None
    assert supervisor.state == OFFLINE
    assert "cable unplugged" in supervisor.error
    frame = read_until_frame(supervisor)
    assert frame is not None
    assert supervisor.state == ONLINE
    assert camera.opens == 3
    supervisor.close()


def test_supervisor_comes_back_after_a_hang(streaming):
    class HangsOnce(BlockingCamera):
        name = "hangs-once"

        def __init__(self):
            super().__init__(good=1)
            self.instance_reads = 0

        def read(self):
            self.instance_reads += 1
            if self.instance_reads == 2:  # only the second read ever hangs
                self.release.wait()
                raise CameraError("released")
            return solid((1, 2, 3))

    camera = HangsOnce()
    supervisor = CameraSupervisor(camera, timeout=0.2, open_timeout=0.5, backoff=(0.05, 0.1))
    supervisor.stream(streaming)
    try:
        assert guarded(supervisor.read) is not None
        assert guarded(supervisor.read) is None
        assert supervisor.state == OFFLINE
        read_until_frame(supervisor)
        assert supervisor.state == ONLINE
        assert supervisor.error is None
    finally:
        camera.release.set()
        supervisor.close()


def test_supervisor_closes_the_camera(streaming):
    camera = FlakyCamera()
    supervisor = CameraSupervisor(camera, timeout=1.0, open_timeout=2.0)
    supervisor.stream(streaming)
    assert guarded(supervisor.read) is not None
    guarded(supervisor.close)
    assert camera.closes == 1


def test_unknown_spec_lists_every_spec_including_auto():
    with pytest.raises(ConfigError) as info:
        make_camera("webcam")
    for spec in ("auto", "picamera2", "opencv:N", "video:PATH", "folder:PATH", "synthetic"):
        assert spec in str(info.value)


# -- a webcam that is not there ------------------------------------------------------------------


def absent_webcam_index() -> int:
    return next(i for i in range(64) if not Path(f"/dev/video{i}").exists())


def test_missing_webcam_is_one_clear_message_not_opencv_noise_on_every_retry(capfd, caplog):
    pytest.importorskip("cv2")
    index = absent_webcam_index()
    supervisor = CameraSupervisor(OpenCVCamera(index), timeout=2.0, open_timeout=10.0, backoff=(0.01, 0.01))
    try:
        for _ in range(200):
            assert guarded(supervisor.read) is None
            if supervisor.reconnects >= 3:
                break
    finally:
        supervisor.close()
    assert supervisor.reconnects >= 3 and supervisor.state == OFFLINE  # it kept trying, offline
    err = capfd.readouterr().err
    assert "WARN" not in err and "can't open camera" not in err, err  # OpenCV's own, once per try
    said = [r.getMessage() for r in caplog.records if r.name == "device.camera" and r.levelno >= logging.WARNING]
    assert len(said) == 1, said
    assert f"no webcam at index {index}" in said[0]
    assert "plug one in" in said[0] and "--camera synthetic" in said[0] and "--camera folder:PATH" in said[0]
    assert f"no webcam at index {index}" in supervisor.error  # what the page and the status show


def test_missing_webcam_retries_are_logged_at_debug_level(caplog):
    pytest.importorskip("cv2")
    supervisor = CameraSupervisor(OpenCVCamera(absent_webcam_index()), timeout=2.0, open_timeout=10.0,
                                  backoff=(0.01, 0.01))
    with caplog.at_level(logging.DEBUG, logger="device.camera"):
        try:
            for _ in range(200):
                guarded(supervisor.read)
                if supervisor.reconnects >= 3:
                    break
        finally:
            supervisor.close()
    retries = [r for r in caplog.records if r.levelno == logging.DEBUG and "still offline" in r.getMessage()]
    assert len(retries) >= 2


class NumberedCamera(Camera):
    """Frame n is filled with n (mod 256); ``clocked`` cameras make frames on their own (``tick`` paces them)."""

    name = "numbered"

    def __init__(self, *, clocked: bool, interval: float = 0.0) -> None:
        self.clocked = clocked
        self.interval = interval
        self.begun = 0

    def read(self):
        self.begun += 1
        if self.interval:
            time.sleep(self.interval)
        return np.full((4, 4, 3), self.begun % 256, np.uint8)


def test_streaming_a_clocked_camera_gives_the_newest_frame_and_drops_older_ones():
    camera = NumberedCamera(clocked=True, interval=0.01)
    supervisor = CameraSupervisor(camera, timeout=2.0, open_timeout=2.0)
    supervisor.stream()
    try:
        guarded(supervisor.read)
        time.sleep(0.3)  # the loop is busy: the camera goes on making frames meanwhile
        frame = guarded(supervisor.read)
        assert frame[0, 0, 0] == supervisor.last_seq % 256
        assert supervisor.last_seq >= 10  # not the frame after the first one: the newest
        assert camera.begun - supervisor.last_seq <= 2
    finally:
        supervisor.close()


def test_streaming_an_unclocked_camera_reads_one_frame_ahead_only():
    camera = NumberedCamera(clocked=False)
    supervisor = CameraSupervisor(camera, timeout=2.0, open_timeout=2.0)
    supervisor.stream()
    try:
        first = guarded(supervisor.read)
        time.sleep(0.2)
        assert camera.begun == 2  # the one it gave and the one it holds: nothing drawn that is never used
        assert first[0, 0, 0] == 1
        assert guarded(supervisor.read)[0, 0, 0] == 2 and supervisor.last_seq == 2
    finally:
        supervisor.close()


def test_next_seq_numbers_frames_whose_read_begins_after_the_call(streaming):
    camera = NumberedCamera(clocked=False)
    supervisor = CameraSupervisor(camera, timeout=2.0, open_timeout=2.0)
    supervisor.stream(streaming)
    try:
        guarded(supervisor.read)
        time.sleep(0.1)
        wanted = supervisor.next_seq()  # a press now: read ahead or not, the next frame it gives began before
        seqs = []
        while not seqs or seqs[-1] < wanted:
            guarded(supervisor.read)
            seqs.append(supervisor.last_seq)
        assert seqs[-1] == wanted and camera.begun >= wanted
        assert seqs[:-1] == ([2] if streaming else [])
    finally:
        supervisor.close()
