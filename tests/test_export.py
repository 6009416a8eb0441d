"""Export and import carry every example: crops, embeddings, classes and names, also to a box with another model."""

from __future__ import annotations

import json
import os
import stat

import pytest

from conftest import REPO, Clock, box_config
from device.app import build_box
from device.box import ImportRefused
from device.camera import FolderCamera, SyntheticCamera
from device.cli import main
from test_keeper import teach, teach_objects  # noqa: E402  (teach frames to classes, wait until stored)

SMALL = "mobilenet_v1_0.5_160_quant_embedding_extractor.tflite"


def make_box(state, embedder=None, camera=None, **sections):
    return build_box(box_config(state, **sections), simulate=True, camera=camera or SyntheticCamera(fps=0),
                     embedder=embedder, clock=Clock())


def gallery(box, class_id):
    return [(e.source, box.example_crop(e.id)) for e in box.examples(class_id, limit=100).examples]


def test_an_export_brings_every_example_and_picture_to_another_box(tmp_path, embedder):
    box = make_box(tmp_path / "a", embedder)
    teach(box, 0, 3)
    teach(box, 2, 2)
    box.rename(2, "Lamp")
    data = box.export_state()
    pictures = [gallery(box, c) for c in range(4)]
    box.close()

    other = make_box(tmp_path / "b", embedder)
    try:
        teach(other, 1, 4)  # replaced by the import
        counts = other.import_state(data)
        assert [(c.name, c.examples) for c in counts] == [("Class 1", 3), ("Class 2", 0), ("Lamp", 2), ("Class 4", 0)]
        assert [c.examples for c in other.snapshot().loop.classes] == [3, 0, 2, 0]
        assert [gallery(other, c) for c in range(4)] == pictures
        assert other.undo() == (2, 1)  # undo goes on from the import, one imported example at a time
    finally:
        other.close()


def test_an_export_from_another_model_is_learned_again_from_its_pictures(tmp_path, embedder, coil100):
    camera = FolderCamera(coil100)
    box = make_box(tmp_path / "a", embedder, camera=camera)
    teach_objects(box, camera, ["obj002", "obj003"], 4)
    data = box.export_state()
    box.close()

    camera = FolderCamera(coil100)
    small = make_box(tmp_path / "b", camera=camera, model={"path": str(REPO.parent / "shared" / "models" / SMALL)})
    try:
        small.import_state(data)
        assert small.switcher.wait(60) and small.snapshot().model_switch.state == "done"
        assert [c.examples for c in small.snapshot().loop.classes] == [4, 4, 0, 0]
        camera.select("obj003")
        camera.seek(40)
        assert small.step().prediction.class_id == 1
    finally:
        small.close()


@pytest.mark.parametrize("damage", [lambda d: d[:len(d) // 2], lambda d: d[:100] + b"\xff" * 50 + d[150:],
                                    lambda d: b"PK\x03\x04" + os.urandom(500)])
def test_a_damaged_export_is_refused_and_changes_nothing(tmp_path, embedder, damage):
    box = make_box(tmp_path, embedder)
    try:
        teach(box, 1, 2)
        data = box.export_state()
        with pytest.raises(ImportRefused, match="Nothing was changed"):
            box.import_state(damage(data))
        assert [c.examples for c in box.snapshot().loop.classes] == [0, 2, 0, 0]
        assert len(box.examples(1).examples) == 2
    finally:
        box.close()


def test_the_shell_lists_exports_and_imports_what_the_page_does(tmp_path, embedder, model_path, capsys, caplog):
    box = make_box(tmp_path / "a", embedder)
    teach(box, 0, 2)
    teach(box, 3, 1)
    box.rename(3, "Cat")
    box.close()
    common = ["--model", str(model_path)]
    assert main(["examples", "--state-dir", str(tmp_path / "a"), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(c["class"], c["name"], c["examples"]) for c in listed["classes"]] == [(1, "Class 1", 2), (4, "Cat", 1)]
    assert listed["examples"] == 3 and listed["bytes"] > 0

    exported = tmp_path / "out.zip"
    assert main(["export", *common, "--state-dir", str(tmp_path / "a"), "-o", str(exported)]) == 0
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600
    assert main(["import", *common, str(exported), "--state-dir", str(tmp_path / "b")]) == 0
    again = make_box(tmp_path / "b", embedder)
    try:
        assert [c.examples for c in again.snapshot().loop.classes] == [2, 0, 0, 1]
        assert again.snapshot().loop.classes[3].name == "Cat"
        # while a box runs on a state folder, the shell does not write to it behind its back
        assert main(["import", *common, str(exported), "--state-dir", str(tmp_path / "b")]) == 2
        assert "another teachbox is using" in caplog.text
    finally:
        again.close()
    (tmp_path / "junk").write_bytes(b"not an export")
    assert main(["import", *common, str(tmp_path / "junk"), "--state-dir", str(tmp_path / "b")]) == 2
