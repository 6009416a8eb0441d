"""What the box looks at: the source seam, the "no hand" answer and switching sources without losing anything.

The landmark models themselves are tested in test_hands, test_faces and test_poses; here a
small finder stands in for them, so that the loop's and the box's behaviour is what is
checked: a frame without a hand is answered "absent" and never taught, every source keeps
its own classes, and a switch (or a restart) brings back what each was taught.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from conftest import Clock, box_config
from device import sources
from device.app import build_box, source_state_dir
from device.box import SwitchRefused
from device.camera import SyntheticCamera
from device.sources import HAND_EDGES, LandmarkSource
from device.vocab import AnswerState


class StubHandFinder:
    """Finds a "hand" in every frame while ``present``: 21 points on a line, features from the frame's colours."""

    sha256s = {"stub_hand.tflite": "0" * 64}

    def __init__(self) -> None:
        self.present = True
        self.resets = 0

    def find(self, frame):
        if not self.present:
            return None
        height, width = frame.shape[:2]
        landmarks = np.zeros((21, 3), np.float32)
        landmarks[:, 0] = np.linspace(0.25, 0.75, 21) * width
        landmarks[:, 1] = 0.5 * height
        quads = [frame[:height // 2, :width // 2], frame[:height // 2, width // 2:],
                 frame[height // 2:, :width // 2], frame[height // 2:, width // 2:]]
        colours = np.concatenate([q.reshape(-1, 3).mean(axis=0) for q in quads]).astype(np.float32)
        return SimpleNamespace(landmarks=landmarks, crop=frame[:32, :32].copy(), score=0.9, colours=colours)

    def reset(self) -> None:
        self.resets += 1


def stub_hand_source(finder=None) -> LandmarkSource:
    return LandmarkSource("hand", finder or StubHandFinder(), lambda found: found.colours / 255.0 - 0.5, dim=12,
                          version="stub-1", edges=HAND_EDGES)


def test_a_landmark_source_says_where_the_hand_is_and_keeps_its_crop():
    source = stub_hand_source()
    frame = np.full((480, 640, 3), 100, np.uint8)
    features = source.infer(source.prepare(frame))
    assert features is not None and features.shape == (12,)
    look = source.look
    assert look.kind == "hand" and look.points.shape == (21, 2) and look.edges == HAND_EDGES
    assert np.allclose(look.points[:, 1], 0.5) and look.points[0, 0] == pytest.approx(0.25)
    assert source.seen(frame).shape == (32, 32, 3)  # what an example keeps: the crop, not the frame

    source.finder.present = False
    assert source.infer(frame) is None and source.look is None
    assert source.seen(frame) is frame


def test_a_source_is_stored_under_its_features_and_models():
    one, same = stub_hand_source(), stub_hand_source()
    other_features = LandmarkSource("hand", StubHandFinder(), lambda f: f.colours, dim=12, version="stub-2")
    finder = StubHandFinder()
    finder.sha256s = {"stub_hand.tflite": "1" * 64}
    other_model = LandmarkSource("hand", finder, lambda f: f.colours, dim=12, version="stub-1")
    assert one.sha256 == same.sha256
    assert len({one.sha256, other_features.sha256, other_model.sha256}) == 3
    assert one.describe()["source"] == "hand" and one.describe()["dim"] == 12


def hand_box(state, factory, *, finder=None, clock=None, **sections):
    source = stub_hand_source(finder)
    box = build_box(box_config(state, **sections), embedder=source, camera=SyntheticCamera(fps=0),
                    pin_factory=factory, clock=clock or Clock())
    return box, source.finder


def test_no_hand_in_view_is_its_own_answer_and_nothing_is_taught(tmp_path, factory):
    box, finder = hand_box(tmp_path / "state", factory)
    try:
        box.loop.teach_next(0, 3)
        assert box.step().taught == 0  # a hand: taught
        finder.present = False
        box.loop.start_teaching(1, lease=60.0)
        results = [box.step() for _ in range(5)]
        assert [r.taught for r in results] == [None] * 5  # held, but no hand: nothing taught
        assert box.snapshot().loop.state == AnswerState.ABSENT and box.snapshot().loop.look is None
        assert box.loop.head.counts[:2] == [1, 0]
        finder.present = True
        assert box.step().taught == 1  # the hold goes on once a hand is back
        box.stop_teaching(1)
        snapshot = box.snapshot().loop
        assert snapshot.source == "hand" and snapshot.look is not None and len(snapshot.look.points) == 21
    finally:
        box.close()


def test_the_leds_stay_dark_while_no_hand_is_in_view(tmp_path, factory):
    clock = Clock()
    box, finder = hand_box(tmp_path / "state", factory, clock=clock)
    try:
        for class_id in (0, 1):
            box.loop.teach_next(class_id, 2)
            box.step(), box.step()
        box.settle()
        clock.t += 60  # past the start-up chase and the taught blinks
        box.step()
        assert box.snapshot().panel.pattern == "answer" and any(box.snapshot().panel.leds)
        finder.present = False
        box.step()
        assert not any(box.snapshot().panel.leds)
    finally:
        box.close()


@pytest.fixture
def switchable(tmp_path, factory, model_path, monkeypatch):
    """A box on the stub hand source that can switch to real pictures (and to a new stub hand)."""
    monkeypatch.setitem(sources._LANDMARK_SOURCES, "hand", lambda folder, **options: stub_hand_source())
    state = tmp_path / "state"
    box, _ = hand_box(state, factory, model={"dir": str(model_path.parent)})
    yield box, state
    box.close()


def teach_and_name(box, class_id, name, n=2):
    box.rename(class_id, name)
    box.loop.teach_next(class_id, n)
    for _ in range(n):
        box.step()
    box.settle()


def test_switching_sources_keeps_what_each_was_taught(switchable, factory, model_path):
    box, state = switchable
    teach_and_name(box, 0, "thumbs up", 3)
    assert box.source == "hand" and box.loop.head.counts[0] == 3
    assert (source_state_dir(box_config(state), "hand") / "examples.db").exists()

    with pytest.raises(SwitchRefused, match="pictures first"):  # the picture model does not apply to hands
        box.switch_model("mobilenet_v2_1.0_224_quant_embedding_extractor.tflite")

    box.switch_source("picture")
    assert box.source == "picture" and box.loop.head.names[0] == "Class 1" and box.loop.head.total == 0
    teach_and_name(box, 1, "mug", 2)

    box.switch_source("hand")
    assert box.loop.head.names[0] == "thumbs up" and box.loop.head.counts[0] == 3 and box.loop.head.total == 3
    assert [c.current for c in box.sources()] == [False, True, False, False]
    box.close()

    again = build_box(box_config(state, model={"dir": str(model_path.parent)}), camera=SyntheticCamera(fps=0),
                      pin_factory=factory)  # after a restart it looks at what it was told to look at last
    try:
        assert again.source == "hand" and again.loop.head.counts[0] == 3
        again.switch_source("picture")
        assert again.loop.head.names[1] == "mug" and again.loop.head.counts[1] == 2
    finally:
        again.close()


def test_a_source_set_in_the_config_is_not_changed_from_the_phone(tmp_path, factory):
    box, _ = hand_box(tmp_path / "state", factory, source={"kind": "hand"})
    try:
        with pytest.raises(SwitchRefused, match=r"\[source\] kind"):
            box.switch_source("picture")
        assert box.source == "hand"
    finally:
        box.close()


@pytest.mark.parametrize("name", ["hands", "", None, 3, "../picture"])
def test_an_unknown_source_is_refused_by_name(switchable, name):
    box, _ = switchable
    with pytest.raises(SwitchRefused, match="picture, hand, face, pose"):
        box.switch_source(name)
    assert box.source == "hand"


def test_a_source_whose_models_are_missing_is_refused_with_the_command_that_fetches_them(switchable, tmp_path,
                                                                                       monkeypatch):
    box, _ = switchable

    def missing(folder, **options):
        from device.errors import ModelMissingError

        raise ModelMissingError("model file 'face_landmark.tflite' does not exist. Fetch it with: teachbox "
                                "fetch-model --source face")

    monkeypatch.setitem(sources._LANDMARK_SOURCES, "face", missing)
    with pytest.raises(SwitchRefused, match="fetch-model --source face"):
        box.switch_source("face")
    assert box.source == "hand" and box.loop.head.total == 0
    box.loop.teach_next(0, 1)
    assert box.step().taught == 0  # still teaching on hands


def test_an_export_of_hands_is_not_imported_into_pictures(switchable):
    from device.box import ImportRefused

    box, _ = switchable
    teach_and_name(box, 0, "thumbs up", 2)
    hands = box.export_state()
    box.switch_source("picture")
    with pytest.raises(ImportRefused, match="Switch it to hand first"):
        box.import_state(hands)
    assert box.loop.head.total == 0
    box.switch_source("hand")
    box.clear_all()
    assert [c.examples for c in box.import_state(hands)][0] == 2  # on hands it is taken
