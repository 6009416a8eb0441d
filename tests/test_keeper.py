"""Every example kept: the box stores what it is taught, edits it, and its head follows the library."""

from __future__ import annotations

import errno
import json
import io
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from conftest import Clock, box_config
from device.app import build_box
from device.camera import FolderCamera, SyntheticCamera
from device.head import NearestCentroidHead
from device.keeper import ExampleKeeper
from device.learned import head_from_library
from device.library import ExampleLibrary
from device.storage import ModelIdentity, StateStore, encode_head, model_identity


def make_box(tmp_path, embedder, camera=None, **sections):
    return build_box(box_config(tmp_path, **sections), simulate=True, camera=camera or SyntheticCamera(fps=0),
                     embedder=embedder, clock=Clock())


def teach(box, class_id, n):
    box.loop.teach_next(class_id, n)
    taught = [box.step().taught for _ in range(n)]
    assert taught == [class_id] * n
    box.step()  # the burst has ended: it is handed to the writer
    box.settle()  # stored, and the answering head follows (StorageBusy if not in time)


def teach_objects(box, camera, objects, shots=4):
    """Show each object from its first view and teach it ``shots`` frames: the first to class 0, the next to 1, ..."""
    for class_id, name in enumerate(objects):
        camera.select(name)
        camera.seek(0)
        teach(box, class_id, shots)


def counts(box):
    return [c.examples for c in box.snapshot().loop.classes]


def from_scratch(box):
    keeper = box.loop.keeper
    head = box.loop.head
    return head_from_library(keeper.library, keeper.model, num_classes=head.num_classes, decode=keeper.decode)


def same_head(a, b):
    _, arrays_a = a.to_state()
    _, arrays_b = b.to_state()
    return (np.array_equal(arrays_a["sums"], arrays_b["sums"])
            and np.array_equal(arrays_a["counts"], arrays_b["counts"]))


def test_every_example_survives_a_restart_with_its_picture(tmp_path, embedder):
    box = make_box(tmp_path, embedder)
    teach(box, 0, 3)
    teach(box, 1, 2)
    box.rename(1, "Mug")
    assert box.close() is True

    again = make_box(tmp_path, embedder)
    try:
        assert counts(again) == [3, 2, 0, 0]
        assert again.snapshot().loop.classes[1].name == "Mug"
        page = again.examples(0)
        assert len(page.examples) == 3 and page.next is None
        assert all(e.has_crop and e.source == "button" for e in page.examples)
        picture = Image.open(io.BytesIO(again.example_crop(page.examples[0].id)))
        assert picture.format == "JPEG" and picture.size == (224, 224)
    finally:
        again.close()


def test_the_head_kept_while_teaching_equals_one_fitted_from_the_library(tmp_path, embedder, coil100):
    camera = FolderCamera(coil100)
    box = make_box(tmp_path, embedder, camera=camera)
    try:
        teach_objects(box, camera, ["obj002", "obj003", "obj004"], 4)
        assert same_head(box.loop.head, from_scratch(box))
        first = box.examples(0).examples
        assert box.delete_examples([first[0].id]) == 1
        assert box.move_examples([first[1].id], 2) == 1
        assert counts(box) == [2, 4, 5, 0]
        assert same_head(box.loop.head, from_scratch(box))
        assert box.undo() == (2, 4)
        assert counts(box) == [2, 4, 1, 0]  # the moved example stays: it belongs to an older burst
        assert same_head(box.loop.head, from_scratch(box))
    finally:
        box.close()


def test_moving_examples_changes_the_answer_as_a_head_taught_so_would(tmp_path, embedder, coil100):
    camera = FolderCamera(coil100)
    box = make_box(tmp_path, embedder, camera=camera)
    try:
        camera.select("obj002")
        teach(box, 0, 4)
        camera.select("obj003")
        teach(box, 1, 4)
        camera.select("obj003")
        camera.seek(30)
        assert box.step().prediction.class_id == 1
        moved = box.move_examples([e.id for e in box.examples(1).examples], 0)
        assert moved == 4 and counts(box) == [8, 0, 0, 0]
        camera.seek(30)
        result = box.step()
        assert result.prediction.class_id == 0
        expected = NearestCentroidHead(embedder.dim, 4)
        for _, class_id, vector in box.loop.keeper.library.embeddings(box.loop.model.sha256, embedder.dim):
            expected.teach(class_id, embedder.from_stored(vector))
        camera.seek(30)
        embedding = embedder.embed(camera.read())
        np.testing.assert_array_equal(box.loop.head.predict(embedding).probabilities,
                                      expected.predict(embedding).probabilities)
    finally:
        box.close()


def test_undo_reaches_back_across_restarts(tmp_path, embedder):
    box = make_box(tmp_path, embedder)
    teach(box, 0, 2)
    teach(box, 2, 3)
    box.close()
    again = make_box(tmp_path, embedder)
    try:
        assert again.undo() == (2, 3)
        assert counts(again) == [2, 0, 0, 0]
        assert again.undo() == (0, 2)
        assert again.undo() is None
        assert counts(again) == [0, 0, 0, 0]
    finally:
        again.close()
    assert counts(make_box(tmp_path / "other", embedder)) == [0, 0, 0, 0]


def test_a_full_class_says_so_and_keeps_only_what_was_stored(tmp_path, embedder):
    box = make_box(tmp_path, embedder, storage={"max_examples_per_class": 3})
    try:
        teach(box, 0, 2)
        teach(box, 0, 2)  # would make 4
        assert counts(box) == [2, 0, 0, 0]
        notice = box.snapshot().library.notice
        assert "class 1 has 2 examples" in notice and "most a class keeps is 3" in notice
        assert same_head(box.loop.head, from_scratch(box))
        assert box.undo() == (0, 2)  # the refused burst is not what undo takes back
        assert counts(box) == [0, 0, 0, 0]
    finally:
        box.close()


def test_a_failing_card_keeps_what_was_taught_in_memory_and_writes_it_later(tmp_path, embedder, monkeypatch):
    box = make_box(tmp_path, embedder)
    keeper = box.loop.keeper
    keeper.writer.retry = 0.05
    real_add = ExampleLibrary.add
    failures = {"left": 3}

    def add(self, *args, **kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_add(self, *args, **kwargs)

    monkeypatch.setattr(ExampleLibrary, "add", add)
    try:
        box.loop.teach_next(1, 2)
        box.step(), box.step(), box.step()
        deadline = time.monotonic() + 5
        while box.snapshot().loop.saving_error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "No space left" in box.snapshot().loop.saving_error
        assert counts(box) == [0, 2, 0, 0]  # the answer still knows them
        assert keeper.settle(5)
        assert box.snapshot().loop.saving_error is None
        assert keeper.library.counts() == {1: 2}
    finally:
        box.close()


def test_a_long_hold_is_written_in_parts_and_undone_as_one(tmp_path):
    library = ExampleLibrary(tmp_path)
    model = ModelIdentity("f" * 64, 8, "test")
    clock = Clock(0.0)
    keeper = ExampleKeeper(library, model=model, to_stored=lambda e: np.array(e, np.float32),
                           from_stored=lambda v: v, flush_after=5.0, monotonic=clock)
    adds = []
    real_add = library.add
    library.add = lambda examples, **kw: adds.append(len(examples)) or real_add(examples, **kw)
    hold = object()
    crop = np.zeros((8, 8, 3), np.uint8)
    for step in range(40):  # a 10 s hold, 4 examples a second
        clock.t = step * 0.25
        keeper.taught(hold, 0, "button", np.eye(8, dtype=np.float32)[step % 8] + 0.1, crop)
    keeper.flush()
    assert keeper.settle()
    assert adds == [21, 19]  # a transaction every 5 s of the hold, never one per frame
    assert library.bursts() == [(0, 40)]
    assert keeper.undo() == (0, 40)
    assert keeper.settle() and library.count() == 0
    keeper.close()


def test_a_head_npz_is_carried_over_once_and_left_in_place(tmp_path, embedder):
    head = NearestCentroidHead(embedder.dim, 4, names=["Cup", "Mug", "Pen", "Key"])
    rng = np.random.default_rng(1)
    for class_id, n in [(0, 3), (2, 5)]:
        for _ in range(n):
            head.teach(class_id, rng.random(embedder.dim, dtype=np.float32))
    StateStore(tmp_path).save(encode_head(head, model_identity(embedder.describe())))
    for _ in range(2):  # a second start carries nothing again
        box = make_box(tmp_path, embedder)
        try:
            assert counts(box) == [3, 0, 5, 0]
            assert [c.name for c in box.snapshot().loop.classes] == ["Cup", "Mug", "Pen", "Key"]
            assert same_head(box.loop.head, head)
        finally:
            box.close()
    assert (tmp_path / "head.npz").exists()


def test_a_filed_doubtful_frame_becomes_an_example_from_the_inbox(tmp_path, embedder):
    box = make_box(tmp_path, embedder)
    try:
        teach(box, 0, 1)
        teach(box, 1, 1)  # the same scene in two classes: no answer can be sure (a close call, or unsure)
        for _ in range(3):
            box.step()
        frames = box.doubtful()
        assert frames, "a doubtful answer should be kept in the inbox"
        thumbnail = frames[0].thumbnail()
        assert Image.open(io.BytesIO(thumbnail)).size == (224, 224)
        box.file_doubtful(frames[0].id, 3)
        assert box.loop.keeper.settle()
        assert counts(box) == [1, 1, 0, 1]
        [filed] = box.examples(3).examples
        assert filed.source == "inbox" and box.example_crop(filed.id) == thumbnail
        assert same_head(box.loop.head, from_scratch(box))
    finally:
        box.close()


def test_quality_is_measured_on_the_stored_examples(tmp_path, embedder, coil100):
    camera = FolderCamera(coil100)
    box = make_box(tmp_path, embedder, camera=camera)
    try:
        teach_objects(box, camera, ["obj002", "obj005"], 5)
        report = box.quality()
        assert [q.examples for q in report.classes] == [5, 5, 0, 0]
        assert report.classes[0].loo_accuracy == 1.0 and report.classes[1].loo_accuracy == 1.0
        box.move_examples([box.examples(1).examples[0].id], 0)  # one mislabelled example
        report = box.quality()
        assert report.classes[0].examples == 6 and report.classes[0].loo_accuracy < 1.0
        assert report.classes[0].confused_with == 1
    finally:
        box.close()


# a box in a process of its own, to be killed: the start both scripts share
BOX_PROCESS = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {tests!r})
    from conftest import Clock, box_config
    from device.app import build_box
    from device.camera import SyntheticCamera
    from device.embedder import Embedder
    box = build_box(box_config({state!r}), simulate=True, camera=SyntheticCamera(fps=0),
                    embedder=Embedder({model!r}, num_threads=1), clock=Clock())
""")

KILLED = BOX_PROCESS + textwrap.dedent("""
    for burst in range({bursts}):
        box.loop.teach_next(burst % 4, 3)
        for _ in range(4):
            box.step()
    assert box.loop.keeper.settle()
    print("stored", flush=True)
    while True:  # teaching goes on, unfinished, when the power goes
        box.loop.start_teaching(0)
        box.step()
""")


@pytest.mark.parametrize("bursts", [1, 6])
def test_kill_9_after_a_burst_was_stored_loses_none_of_it(tmp_path, model_path, embedder, bursts):
    state = tmp_path / "state"
    script = KILLED.format(tests=os.path.dirname(__file__), state=str(state), model=str(model_path), bursts=bursts)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                               cwd=os.path.dirname(os.path.dirname(__file__)))
    try:
        assert process.stdout.readline().strip() == "stored"
        time.sleep(0.3)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(30)
    db = sqlite3.connect(state / "examples.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    box = make_box(state, embedder)
    try:
        stored = counts(box)
        expected = [3 * sum(1 for b in range(bursts) if b % 4 == c) for c in range(4)]
        assert stored[1:] == expected[1:]
        assert stored[0] >= expected[0]  # and perhaps part of the hold going on when it was killed
        assert all(e.has_crop for e in box.examples(0, limit=100).examples)
    finally:
        box.close()


SMALL = "mobilenet_v1_0.5_160_quant_embedding_extractor.tflite"
V2 = "mobilenet_v2_1.0_224_quant_embedding_extractor.tflite"


@pytest.fixture(scope="module")
def mirror():
    from conftest import REPO

    folder = REPO.parent / "shared" / "models"
    if not (folder / SMALL).is_file() or not (folder / V2).is_file():
        pytest.fail(f"the other embedding models are missing from {folder} (the model mirror)")
    return folder


def recognised(box, camera, objects, view=40):
    answers = []
    for name in objects:
        camera.select(name)
        camera.seek(view)
        answers.append(box.step().prediction.class_id)
    return answers


def test_switching_the_model_on_the_phone_keeps_every_class(tmp_path, embedder, coil100, mirror):
    objects = ["obj002", "obj003", "obj004"]
    camera = FolderCamera(coil100)
    box = make_box(tmp_path, embedder, camera=camera, model={"dir": str(mirror)})
    try:
        teach_objects(box, camera, objects)
        box.rename(2, "Duck")
        assert [m.current for m in box.models()] == [True, False, False]
        box.switch_model(SMALL)
        assert box.switcher.wait(60)
        progress = box.snapshot().model_switch
        assert (progress.state, progress.done, progress.total) == ("done", 12, 12)
        snapshot = box.snapshot().loop
        assert snapshot.model["model"] == SMALL and snapshot.model["dim"] == 512
        assert [c.examples for c in snapshot.classes] == [4, 4, 4, 0] and snapshot.classes[2].name == "Duck"
        assert recognised(box, camera, objects) == [0, 1, 2]
        assert same_head(box.loop.head, from_scratch(box))
    finally:
        box.close()
    again = build_box(box_config(tmp_path, model={"dir": str(mirror)}), simulate=True, camera=FolderCamera(coil100),
                      clock=Clock())
    try:  # the phone's choice is kept across a restart
        assert again.snapshot().loop.model["model"] == SMALL
        assert counts(again) == [4, 4, 4, 0] and again.switcher.progress is None
    finally:
        again.close()


def test_a_model_changed_in_the_config_embeds_the_stored_examples_at_start(tmp_path, embedder, coil100, mirror):
    objects = ["obj002", "obj005"]
    box = make_box(tmp_path, embedder, camera=FolderCamera(coil100))
    teach_objects(box, box.loop.camera.camera, objects)
    box.close()
    camera = FolderCamera(coil100)
    again = build_box(box_config(tmp_path, model={"path": str(mirror / V2)}), simulate=True, camera=camera,
                      clock=Clock())
    try:
        assert again.switcher.wait(60)
        assert again.snapshot().model_switch.state == "done"
        assert counts(again) == [4, 4, 0, 0]
        assert recognised(again, camera, objects) == [0, 1]
        with pytest.raises(Exception, match=r"\[model\] path"):
            again.switch_model(SMALL)
    finally:
        again.close()


@pytest.mark.parametrize("name, why", [
    ("nonsense.tflite", "unknown model"),
    ("mobilenet_v1_1.0_224_quant_embedding_extractor.tflite", "runs .* already"),
    (SMALL, "not on this box: fetch it first with .*fetch-model .*--name mobilenet_v1_0.5_160"),
])
def test_a_model_switch_that_cannot_be_done_says_why_and_changes_nothing(tmp_path, embedder, name, why):
    from device.box import SwitchRefused

    box = make_box(tmp_path, embedder, model={"dir": str(tmp_path / "empty")})
    try:
        teach(box, 0, 2)
        with pytest.raises(SwitchRefused, match=why):
            box.switch_model(name)
        assert box.snapshot().model_switch is None and counts(box) == [2, 0, 0, 0]
    finally:
        box.close()


CHURN = BOX_PROCESS + textwrap.dedent("""
    def stored():
        assert box.loop.keeper.settle()
        print(json.dumps(box.loop.keeper.library.counts()), flush=True)
    stored()
    step = 0
    while True:
        step += 1
        if step % 3 == 0:
            oldest = min(e.id for c in range(4) for e in box.examples(c, limit=500).examples)
            print("delete", flush=True)
            box.delete_examples([oldest])
        elif step % 7 == 0:
            print("undo", flush=True)
            box.undo()
        else:
            print("teach", step % 4, flush=True)
            box.loop.teach_next(step % 4, 2)
            for _ in range(3):
                box.step()
        stored()
""")


def state_of(line):
    return {int(k): v for k, v in json.loads(line).items() if v}


def plausible(before, change, after):
    """``after`` is ``before``, or ``before`` with ``change`` (teach c / delete / undo) made whole."""
    if after == before:
        return True
    if change is None:
        return False
    diff = {c: after.get(c, 0) - before.get(c, 0) for c in set(before) | set(after)}
    diff = {c: d for c, d in diff.items() if d}
    if change[0] == "teach":
        return diff == {int(change[1]): 2}
    if change[0] == "delete":
        return list(diff.values()) == [-1]
    return len(diff) == 1 and list(diff.values())[0] in (-1, -2)  # undo: a burst of 2, perhaps one deleted


def test_killed_at_random_moments_while_teaching_deleting_and_undoing_it_keeps_a_committed_state(
        tmp_path, model_path, embedder):
    rng = np.random.default_rng(9)
    state = tmp_path / "state"
    script = CHURN.format(tests=os.path.dirname(__file__), state=str(state), model=str(model_path))
    history, in_flight = [], None
    for _ in range(8):
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                                   cwd=os.path.dirname(os.path.dirname(__file__)))
        try:
            lines = [process.stdout.readline()]  # started: what the last run left
            deadline = time.monotonic() + float(rng.uniform(0.05, 1.0))
            while time.monotonic() < deadline:
                lines.append(process.stdout.readline())
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(30)
        lines += process.stdout.read().splitlines(keepends=True)  # what it said before it died
        if history:  # what the last run stored, or that plus the change it was making when killed
            assert plausible(history[-1], in_flight, state_of(lines[0])), (history[-1], in_flight, lines[0])
        in_flight = None
        for line in lines:
            if line.startswith("{"):
                history.append(state_of(line))
                in_flight = None
            elif line.strip():
                in_flight = line.split()
        db = sqlite3.connect(state / "examples.db")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
    assert len(history) > 8 and sum(history[-1].values()) > 0


def test_a_damaged_library_is_set_aside_and_the_last_good_copy_used(tmp_path, embedder, caplog):
    box = make_box(tmp_path, embedder)
    teach(box, 1, 3)
    box.close()  # a changed library is copied to its backup when the box stops (and hourly while it runs)
    database = tmp_path / "examples.db"
    data = bytearray(database.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the card garbles the first page
    database.write_bytes(bytes(data))
    for wal in ("examples.db-wal", "examples.db-shm"):
        (tmp_path / wal).unlink(missing_ok=True)
    again = make_box(tmp_path, embedder)
    try:
        assert counts(again)[1] == 3
        assert "was damaged" in caplog.text and "last good backup" in caplog.text
        assert [p.name for p in tmp_path.glob("examples.db.damaged-*")]  # moved aside, never deleted
    finally:
        again.close()
