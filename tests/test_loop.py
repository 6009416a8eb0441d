"""The whole loop: camera -> real model -> head -> answer, persistence across restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np

from device.app import build_box, load_head, open_keeper
from device.bursts import BurstTeacher
from device.camera import OFFLINE, ONLINE, CameraSupervisor, FolderCamera, SyntheticCamera
from device.config import Config
from device.head import NearestCentroidHead
from device.loop import TeachLoop
from device.storage import StateStore, model_identity
from device.vocab import AnswerState

OBJECTS = ["obj002", "obj003", "obj004", "obj005", "obj006"]
SHOTS = 5


def make_loop(embedder, camera, state_dir, *, classes=5, interval=3600.0, smoothing=5, timeout=2.0, teacher=None):
    config = Config().override("storage", state_dir=str(state_dir), save_interval=interval).override(
        "head", classes=classes)
    keeper = open_keeper(config, embedder)
    head = load_head(keeper, config)
    supervisor = CameraSupervisor(camera, timeout=timeout, open_timeout=max(timeout, 1.0), backoff=(0.05, 0.1))
    return TeachLoop(supervisor, embedder, head, model=keeper.model, keeper=keeper,
                     smoothing=smoothing, teacher=teacher)


def teach_objects(loop, camera):
    for class_id, name in enumerate(OBJECTS):
        camera.select(name)
        camera.seek(0)
        loop.rename(class_id, name)
        loop.teach_next(class_id, SHOTS)
        taught = [loop.step().taught for _ in range(SHOTS)]
        assert taught == [class_id] * SHOTS, f"{name}: frames went to {taught}"


def test_teach_five_objects_then_recognise_their_other_views(embedder, coil100, tmp_path):
    camera = FolderCamera(coil100)
    loop = make_loop(embedder, camera, tmp_path)
    teach_objects(loop, camera)
    assert loop.head.counts == [SHOTS] * len(OBJECTS)

    right = total = 0
    for class_id, name in enumerate(OBJECTS):
        camera.select(name)
        camera.seek(SHOTS)  # every view except the five taught ones
        views = len(camera._files[name]) - SHOTS
        for _ in range(views):
            result = loop.step()
            assert result.taught is None
            right += result.prediction.class_id == class_id
            total += 1
        # the shown (smoothed) answer has settled on the object
        assert result.answer == class_id
        assert loop.snapshot().answer_name == name
    accuracy = right / total
    assert accuracy >= 0.95, f"only {right}/{total} views answered right"


def test_status_snapshot_has_what_the_page_needs(embedder, tmp_path):
    camera = SyntheticCamera(fps=0)
    loop = make_loop(embedder, camera, tmp_path, classes=4)
    loop.teach_next(0, 2)
    for _ in range(4):
        loop.step()
    status = loop.snapshot()
    assert status.answer_name == "Class 1" and status.answer_id == 0 and status.state == AnswerState.OK
    assert 0 < status.confidence <= 0.667 and not status.sure  # two examples: not sure yet
    assert [c.examples for c in status.classes] == [2, 0, 0, 0]
    assert status.classes[0].score > 0.5 and status.classes[1].score is None
    assert status.camera.state == ONLINE
    assert status.fps > 0
    assert set(status.latency_ms) == {"capture", "preprocess", "invoke", "classify"}
    assert all(v > 0 for v in status.latency_ms.values())
    assert status.model["runtime"] in ("ai-edge-litert", "tflite-runtime")
    assert status.model["threads"] == 2 and status.uptime_s >= 0
    assert status.model["model"].endswith(".tflite")


def test_nothing_learned_is_not_a_random_class(embedder, tmp_path):
    loop = make_loop(embedder, SyntheticCamera(fps=0), tmp_path)
    result = loop.step()
    assert result.answer == "nothing-learned"
    status = loop.snapshot()
    assert status.state == AnswerState.EMPTY and status.answer_id is None and status.answer_name is None


def test_teaching_uses_only_frames_captured_after_the_request(embedder, tmp_path):
    # no rate limit and no duplicate skipping here: every eligible frame is taught
    teacher = BurstTeacher(embedder.dim, rate=1e9, duplicate_similarity=2.0)
    loop = make_loop(embedder, SyntheticCamera(fps=0), tmp_path, teacher=teacher)
    loop.step()
    loop.teach_next(1, 3)
    taught = [loop.step().taught for _ in range(5)]
    assert taught == [1, 1, 1, None, None]
    loop.start_teaching(2)
    assert [loop.step().taught for _ in range(3)] == [2, 2, 2]
    loop.stop_teaching()
    assert loop.step().taught is None
    assert loop.head.counts == [0, 3, 3, 0, 0]
    assert loop.undo() == (2, 3)
    assert loop.keeper.settle()  # the head follows the library on its writer thread
    assert loop.head.counts == [0, 3, 0, 0, 0]
    assert loop.undo() == (1, 3)
    assert loop.undo() is None
    assert loop.keeper.settle()
    assert loop.head.total == 0


def test_holding_a_class_does_not_flood_it_with_copies(embedder, tmp_path):
    # The synthetic scene barely changes between frames: a long hold adds few examples.
    loop = make_loop(embedder, SyntheticCamera(fps=0), tmp_path)
    loop.start_teaching(0)
    taught = [loop.step().taught for _ in range(60)]
    loop.stop_teaching()
    assert taught[0] == 0  # the first frame after the press is always taken
    assert 1 <= taught.count(0) <= 5
    assert loop.undo() == (0, taught.count(0))


def test_restart_keeps_what_was_learned(embedder, coil100, tmp_path):
    camera = FolderCamera(coil100)
    loop = make_loop(embedder, camera, tmp_path)
    teach_objects(loop, camera)
    camera.select("obj004")
    camera.seek(40)
    before = loop.step().prediction
    loop.close()  # clean shutdown saves, although the save interval has not passed

    again = make_loop(embedder, FolderCamera(coil100), tmp_path)
    assert again.head.counts == [SHOTS] * len(OBJECTS)
    assert again.head.names == OBJECTS
    again.camera.camera.select("obj004")
    again.camera.camera.seek(40)
    after = again.step().prediction
    assert after.class_id == before.class_id == 2
    np.testing.assert_array_equal(after.scores, before.scores)


def test_build_box_from_config_loads_saved_state(model_path, tmp_path):
    config = Config().override("model", path=str(model_path), threads=1).override("storage", state_dir=str(tmp_path))
    box = build_box(config, simulate=True, camera=SyntheticCamera(fps=0))
    box.loop.teach_next(3, 2)
    for _ in range(3):
        box.step()
    box.close()
    reloaded = build_box(config, simulate=True, camera=SyntheticCamera(fps=0))
    assert [c.examples for c in reloaded.snapshot().loop.classes] == [0, 0, 0, 2]
    reloaded.close()


def test_fewer_classes_in_config_never_drops_learned_examples(model_path, embedder, tmp_path):
    config = Config().override("storage", state_dir=str(tmp_path))
    loop = make_loop(embedder, SyntheticCamera(fps=0), tmp_path, classes=4)
    loop.teach_next(3, 1)
    loop.step(), loop.step()
    loop.close()
    head = load_head(open_keeper(config, embedder), config.override("head", classes=2))
    assert head.num_classes == 4 and head.counts[3] == 1


def test_a_camera_that_stops_never_hangs_the_loop(embedder, tmp_path, hanging_camera):
    camera = hanging_camera
    loop = make_loop(embedder, camera, tmp_path, timeout=0.2)
    loop.start_teaching(0)
    result = loop.step()
    assert result.camera_state == OFFLINE and result.frame is None and result.taught is None
    camera = loop.snapshot().camera
    assert camera.state == OFFLINE
    assert "no frame" in camera.error
    assert loop.head.counts[0] == 0  # nothing is taught while the camera is offline


def test_a_camera_that_comes_back_goes_online_again(embedder, tmp_path):
    class Flaky(SyntheticCamera):
        failures = 2

        def read(self):
            if self.failures:
                self.failures -= 1
                raise OSError("unplugged")
            return super().read()

    loop = make_loop(embedder, Flaky(fps=0), tmp_path, timeout=0.5)
    states = [loop.step().camera_state for _ in range(8)]
    assert states[0] == OFFLINE
    assert states[-1] == ONLINE
    assert loop.camera.reconnects >= 2


def test_sigterm_stops_cleanly_and_saves(model_path, tmp_path):
    state_dir = tmp_path / "state"
    # Seed a saved head, as if something had been learned before.
    from device.embedder import Embedder
    from device.storage import encode_head

    embedder = Embedder(model_path, num_threads=1)
    head = NearestCentroidHead(embedder.dim, 4)
    head.teach(1, np.ones(embedder.dim, np.float32))
    StateStore(state_dir).save(encode_head(head, model_identity(embedder.describe())))

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "device", "run", "--simulate", "--camera", "synthetic", "--model", str(model_path),
         "--state-dir", str(state_dir), "--threads", "1"],
        stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    deadline = time.monotonic() + 60
    for line in process.stderr:
        lines.append(line)
        if "is online" in line or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=30)
    log = "".join(lines) + rest
    assert process.returncode == 0, log
    assert "SIGTERM received" in log and "Traceback" not in log
    assert "carried what was learned" in log
    config = Config().override("storage", state_dir=str(state_dir))
    assert load_head(open_keeper(config, embedder), config).counts == [0, 1, 0, 0]


def test_on_a_pi_without_its_camera_auto_never_falls_back_to_made_up_frames(monkeypatch):
    import device.app
    from device.camera import PiCamera, SyntheticCamera as Synthetic

    monkeypatch.setattr(device.app, "pi_camera_available", lambda: (False, "no Pi camera is connected"))
    monkeypatch.setattr(device.app, "is_raspberry_pi", lambda: True)
    assert isinstance(device.app.choose_camera("auto", simulate=False, model_size=(224, 224)), PiCamera)
    monkeypatch.setattr(device.app, "is_raspberry_pi", lambda: False)  # a PC: the synthetic scene
    assert isinstance(device.app.choose_camera("auto", simulate=False, model_size=(224, 224)), Synthetic)


def test_frames_read_ahead_are_never_taught_to_a_press_that_came_after_their_capture_began(embedder, tmp_path):
    loop = make_loop(embedder, SyntheticCamera(fps=0), tmp_path)
    loop.camera.stream()  # as run() does: the next frame is read while the model looks at this one
    try:
        loop.step()
        time.sleep(0.2)  # the frame after it is read meanwhile
        loop.teach_next(0, 1)
        early = loop.step()
        assert early.taught is None  # its capture began before the press
        late = loop.step()
        assert late.taught == 0 and late.seq == early.seq + 1
        assert loop.head.counts[0] == 1
    finally:
        loop.close()
