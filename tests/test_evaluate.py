"""device.evaluate with fake sources: no-detection images, the person protocol and its person ids.

A fake source sees a frame's mean colour: dark frames are "no hand" (``None``), the
others give a vector of their colour, so each class (one colour) is told apart
exactly and every figure can be checked to the last query.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from device.errors import DataError
from device.evaluate import evaluate, person_ids, person_of, load_dataset

COLOURS = {"red": (220, 30, 30), "green": (30, 220, 30), "blue": (30, 30, 220)}
DARK = (0, 0, 0)


class FakeSource:
    """Features of a frame: its mean colour (unit length) with 5 more values from the colour; None when dark."""

    name = "hand"
    dim = 8

    def __init__(self):
        self.calls = []  # "reset" / "embed" in the order they came
        self._out = np.zeros(self.dim, np.float32)

    def reset(self):
        self.calls.append("reset")

    def embed(self, frame):
        self.calls.append("embed")
        mean = frame.reshape(-1, 3).mean(axis=0)
        if mean.max() < 10:
            return None
        unit = mean / np.linalg.norm(mean)
        self._out[:3] = unit
        self._out[3:] = np.cos(np.arange(1, 6) * unit.argmax())
        return self._out  # reused by the next call, as a real source's

    def describe(self):
        return {"source": self.name, "model": "fake.tflite", "dim": self.dim}


class NoResetSource(FakeSource):
    """Like the picture Embedder of today: no reset, no name."""

    reset = None
    name = None

    def describe(self):
        return {"model": "fake.tflite", "dim": self.dim}


def write(path: Path, colour) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    noise = rng.integers(-3, 4, size=(12, 16, 3)) if max(colour) else 0
    Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)).save(path)
    return path


def dataset(root: Path, *, per_class=8, dark=2, dark_classes=("red", "green", "blue"), names=None) -> Path:
    """One folder per colour, ``per_class`` images; the first ``dark`` of each of ``dark_classes`` dark."""
    for cls, colour in COLOURS.items():
        for i in range(per_class):
            name = names(cls, i) if names else f"img{i:02d}.png"
            write(root / cls / name, DARK if cls in dark_classes and i < dark else colour)
    return root


def is_dark(path: Path) -> bool:
    return np.asarray(Image.open(path)).max() < 10


# -- no detection --------------------------------------------------------------------------------


@pytest.mark.parametrize("head", ["metric", "centroid", "knn"])
@pytest.mark.parametrize("protocol", ["random", "arc"])
def test_images_with_nothing_found_are_never_taught_and_count_as_wrong(tmp_path, head, protocol):
    data = dataset(tmp_path / "data")  # 3 classes x 8 images, 2 of each dark
    record = []
    result = evaluate(FakeSource(), data, shots=2, splits=5, head=head, protocol=protocol, record=record)
    assert len(record) == 5
    for split in record:
        assert len(split["taught"]) == 3 * 2 and not any(is_dark(p) for p in split["taught"])
        assert len(split["asked"]) == 3 * 6 and sum(is_dark(p) for p in split["asked"]) == 3 * 2
        assert not set(split["taught"]) & set(split["asked"])
    # every query with a detection is right; each dark one is wrong: 4 of the 6 per class
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["split_accuracies"] == [round(4 / 6, 6)] * 5
    assert result["accuracy_detected"] == 1.0
    assert result["queries"] == 5 * 3 * 6 and result["queries_detected"] == 5 * 3 * 4
    assert result["no_detection_rate"] == 6 / 24 and result["images"] == 24
    assert result["short_draws"] == 0 and result["classes_untaught"] == {}
    assert result["source"] == "hand" and result["model"] == "fake.tflite" and result["dim"] == 8
    assert result["fps"] > 0


def test_a_class_with_nothing_found_is_reported_and_its_queries_are_wrong(tmp_path):
    data = dataset(tmp_path / "data", dark=8, dark_classes=("blue",))  # not one blue picture has a detection
    record = []
    result = evaluate(FakeSource(), data, shots=2, splits=4, head="metric", record=record)
    assert result["classes_untaught"] == {"blue": 4}
    for split in record:
        assert not any(p.parent.name == "blue" for p in split["taught"])
        assert sum(p.parent.name == "blue" for p in split["asked"]) == 8
    # red and green: 6 right each; blue's 8 all wrong
    assert result["accuracy"] == pytest.approx(12 / 20)
    assert result["accuracy_detected"] == 1.0
    assert result["no_detection_rate"] == pytest.approx(8 / 24)


def test_a_class_with_fewer_detections_than_shots_teaches_what_it_has(tmp_path):
    data = dataset(tmp_path / "data", dark=7, dark_classes=("green",))  # one green picture has a hand
    record = []
    result = evaluate(FakeSource(), data, shots=3, splits=3, head="centroid", record=record)
    assert result["short_draws"] == 3 and result["classes_untaught"] == {}
    for split in record:
        assert [p.name for p in split["taught"] if p.parent.name == "green"] == ["img07.png"]
    assert result["accuracy_detected"] == 1.0
    assert result["accuracy"] == pytest.approx((5 + 5 + 0) / (5 + 5 + 7))


def test_never_taught_classes_with_nothing_found_are_never_right(tmp_path):
    data = dataset(tmp_path / "data", dark=4)  # half of every class dark
    result = evaluate(FakeSource(), data, shots=2, ways=2, unknown_classes=1, splits=3, head="metric")
    # taught classes: 4 of the 6 queries dark; the stranger's 8 images: 4 dark, never right
    assert result["accuracy"] == pytest.approx(2 / 6) and result["accuracy_detected"] == 1.0
    assert 0 < result["open_set_accuracy"] <= (2 + 2 + 4) / (6 + 6 + 8)


def test_each_image_is_embedded_once_after_a_reset(tmp_path):
    data = dataset(tmp_path / "data")
    source = FakeSource()
    evaluate(source, data, shots=2, splits=6)
    assert source.calls == ["reset", "embed"] * 24


def test_a_source_without_reset_or_name_is_the_picture_source(tmp_path):
    data = dataset(tmp_path / "data", dark=0)
    result = evaluate(NoResetSource(), data, shots=1, splits=2)
    assert result["source"] == "picture" and result["no_detection_rate"] == 0.0
    assert result["accuracy"] == result["accuracy_detected"] == 1.0


# -- person ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, pattern, person", [
    ("s03_happy.png", None, "s03"),
    ("person7-0042.jpg", None, "person7"),
    ("s03-a_b.png", None, "s03"),
    ("a7Bx9QmZ.jpg", None, None),
    ("_x.png", None, None),
    ("img_subj12_a.png", r"subj(\d+)", "12"),
    ("P4 smiling.jpg", r"P\d+", "P4"),
    ("x.png", r"subj(\d+)", None),
])
def test_person_of_a_file_name(name, pattern, person):
    assert person_of(name, pattern) == person


def test_a_bad_person_pattern_is_refused():
    with pytest.raises(DataError, match=r"--person-pattern 'subj\(' is not a regular expression"):
        person_of("s1_x.png", "subj(")


def people_names(cls, i):
    return f"s{i % 6:02d}_{cls}{i}.png"  # 6 people, each in every class


def test_person_ids_per_image(tmp_path):
    data = load_dataset(dataset(tmp_path / "data", per_class=6, dark=0, names=people_names))
    assert person_ids(data)["red"] == ["s00", "s01", "s02", "s03", "s04", "s05"]
    assert person_ids(data, r"s0(\d)")["blue"] == ["0", "1", "2", "3", "4", "5"]


def test_names_without_ids_are_refused_naming_the_rule_and_the_fix(tmp_path):
    data = load_dataset(dataset(tmp_path / "data", dark=0, names=lambda cls, i: f"Xq{i}Zr{cls}.png"))
    with pytest.raises(DataError) as refused:
        person_ids(data)
    message = str(refused.value)
    assert "24 of 24 images have none" in message
    assert "before the first '_' or '-'" in message
    assert "s03_happy.png" in message and "--person-pattern REGEX" in message
    with pytest.raises(DataError, match=r"--person-pattern 'subj\(\\d\+\)'"):
        person_ids(data, r"subj(\d+)")


def test_one_person_is_refused(tmp_path):
    data = load_dataset(dataset(tmp_path / "data", dark=0, names=lambda cls, i: f"anna_{cls}{i}.png"))
    with pytest.raises(DataError, match="at least 2 people.*'anna'"):
        person_ids(data)


def test_ids_that_are_class_names_are_refused(tmp_path):
    data = load_dataset(dataset(tmp_path / "data", dark=0, names=lambda cls, i: f"{cls}_{i}.png"))
    with pytest.raises(DataError, match="one class only"):
        person_ids(data)


# -- person protocol -----------------------------------------------------------------------------


def person(path: Path) -> str:
    return path.name.split("_")[0]


@pytest.mark.parametrize("teach_people", [None, 1, 5])
def test_the_person_protocol_never_asks_about_a_person_who_taught(tmp_path, teach_people):
    data = dataset(tmp_path / "data", per_class=12, dark=1, names=people_names)
    record = []
    result = evaluate(FakeSource(), data, shots=1, ways=2, unknown_classes=1, splits=8, protocol="person",
                      teach_people=teach_people, record=record)
    expected = 3 if teach_people is None else teach_people
    assert result["people"] == 6 and result["teach_people"] == expected
    everyone = {person(p) for p in data.glob("*/*.png")}
    seen_teachers = set()
    for split in record:
        teachers = {person(p) for p in split["taught"]}
        assert len(teachers) <= expected
        asked = {person(p) for p in split["asked"] + split["strangers"]}
        assert not teachers & asked
        # every image of the people who did not teach is asked, of the taught classes
        classes = {p.parent.name for p in split["taught"]}
        others = [p for p in data.glob("*/*.png") if p.parent.name in classes and person(p) not in teachers]
        if len(teachers) == expected:
            assert sorted(split["asked"]) == sorted(others)
        assert not any(is_dark(p) for p in split["taught"])
        seen_teachers |= teachers
    assert len(seen_teachers) > expected  # the teachers change from split to split
    assert seen_teachers <= everyone
    assert result["accuracy_detected"] == 1.0 and result["accuracy"] < 1.0


def test_the_person_protocol_with_a_pattern(tmp_path):
    data = dataset(tmp_path / "data", per_class=6, dark=0, names=lambda cls, i: f"{cls}.subj{i % 3}.png")
    record = []
    result = evaluate(FakeSource(), data, shots=1, splits=3, protocol="person", person_pattern=r"subj(\d)",
                      record=record)
    assert result["people"] == 3 and result["person_pattern"] == r"subj(\d)"
    for split in record:
        assert not {p.name[-5] for p in split["taught"]} & {p.name[-5] for p in split["asked"]}


def test_person_options_need_the_person_protocol(tmp_path):
    data = dataset(tmp_path / "data", names=people_names)
    with pytest.raises(DataError, match="--protocol person"):
        evaluate(FakeSource(), data, shots=1, person_pattern=r"s(\d+)")
    with pytest.raises(DataError, match=r"teach people \(6\) must be from 1 to 5"):
        evaluate(FakeSource(), data, shots=1, protocol="person", teach_people=6)


# -- scripts/make_variants.py --------------------------------------------------------------------


def _make_variants():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_variants", Path(__file__).parent.parent / "scripts"
                                                  / "make_variants.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("variant", ["small-clutter", "mirror", "rotate", "dark", "closeup"])
def test_make_variants_writes_every_picture_under_its_name_and_leaves_the_source_alone(tmp_path, variant):
    make_variants = _make_variants()
    src = tmp_path / "src"
    for cls, colour in COLOURS.items():
        for i in range(3):
            write(src / cls / f"s{i}_{cls}.{'jpg' if i else 'png'}", colour)
    (src / "notes.txt").write_text("not a picture")
    clutter = tmp_path / "clutter"
    for i in range(4):
        write(clutter / "things" / f"t{i}.png", (40 * i, 200, 90))
    before = _snapshot(src)
    dst = tmp_path / "out" / variant
    assert make_variants.main([str(src), str(dst), "--variant", variant, "--seed", "3", "--clutter", str(clutter)]) == 0
    assert _snapshot(src) == before
    made = sorted(p.relative_to(dst) for p in dst.rglob("*") if p.suffix in (".png", ".jpg"))
    assert made == sorted(p.relative_to(src) for p in src.rglob("*") if p.suffix in (".png", ".jpg"))
    size = (640, 480) if variant == "small-clutter" else (16, 12)
    for name in made:
        with Image.open(dst / name) as image:
            assert image.size == size and image.mode == "RGB"
            assert image.format == ("PNG" if name.suffix == ".png" else "JPEG")
    assert np.asarray(Image.open(dst / "red" / "s0_red.png")).tobytes() != np.asarray(
        Image.open(src / "red" / "s0_red.png").resize(size)).tobytes()
    # the same seed makes the same pictures
    again = tmp_path / "again"
    make_variants.make_variants(src, again, variant, seed=3, clutter=clutter)
    assert (again / "red" / "s0_red.png").read_bytes() == (dst / "red" / "s0_red.png").read_bytes()


def test_make_variants_never_writes_into_the_source(tmp_path, capsys):
    make_variants = _make_variants()
    src = dataset(tmp_path / "src", per_class=2, dark=0)
    before = _snapshot(src)
    for dst in (src, src / "harder", src / "red", tmp_path):
        assert make_variants.main([str(src), str(dst), "--variant", "mirror"]) == 2
        assert "outside the source" in capsys.readouterr().err
    full = tmp_path / "full"
    (full / "x").mkdir(parents=True)
    assert make_variants.main([str(src), str(full), "--variant", "mirror"]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert _snapshot(src) == before
    with pytest.raises(SystemExit):
        make_variants.main([str(src), str(tmp_path / "new"), "--variant", "blurry"])
