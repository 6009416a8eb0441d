"""The head derived from the examples library (device.learned), and the migration of head.npz states."""

from __future__ import annotations

import numpy as np
import pytest

from device.head import NearestCentroidHead
from device.learned import head_from_library, migrate_head_state
from device.library import ExampleLibrary, NewExample
from device.storage import ModelIdentity, StateStore, encode_head

DIM = 64
MODEL = ModelIdentity(sha256="c" * 64, dim=DIM, name="test.tflite")


def clustered(n, classes, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, DIM))
    return [(i % classes, (centres[i % classes] + 0.3 * rng.normal(size=DIM)).astype(np.float32)) for i in range(n)]


@pytest.fixture
def library(tmp_path):
    library = ExampleLibrary(tmp_path)
    yield library
    library.close()


def sums_of(head):
    return head.to_state()[1]


def test_a_head_rebuilt_from_the_library_is_the_head_taught_incrementally(library):
    live = NearestCentroidHead(DIM, 4)
    data = clustered(200, 4)
    for start in range(0, 200, 10):  # bursts of ten, as the loop would store them
        chunk = data[start:start + 10]
        for class_id, vector in chunk:
            live.teach(class_id, vector)
        library.add([NewExample(c, v) for c, v in chunk], model=MODEL.sha256)
    rebuilt = head_from_library(library, MODEL, num_classes=4)
    np.testing.assert_array_equal(sums_of(rebuilt)["sums"], sums_of(live)["sums"])
    assert rebuilt.counts == live.counts
    probe = clustered(20, 4, seed=9)
    for _, vector in probe:
        a, b = live.predict(vector), rebuilt.predict(vector)
        assert a.class_id == b.class_id and np.array_equal(a.scores, b.scores)


def test_deleting_and_moving_change_the_head_as_a_fit_from_scratch_would(library):
    data = clustered(40, 2)
    ids = library.add([NewExample(c, v) for c, v in data], model=MODEL.sha256)
    library.delete(ids[:5])
    library.move(ids[5:8], 1)
    expected = NearestCentroidHead(DIM, 4)
    for i, (class_id, vector) in enumerate(data):
        if i >= 5:
            expected.teach(1 if i < 8 else class_id, vector)
    rebuilt = head_from_library(library, MODEL, num_classes=4)
    np.testing.assert_array_equal(sums_of(rebuilt)["sums"], sums_of(expected)["sums"])
    assert rebuilt.counts == expected.counts


def test_stored_quantized_embeddings_give_the_head_the_live_loop_had(tmp_path, embedder):
    from device.camera import SyntheticCamera
    from device.storage import model_identity

    model = model_identity(embedder.describe())
    library = ExampleLibrary(tmp_path)
    camera = SyntheticCamera(fps=0)
    live = NearestCentroidHead(embedder.dim, 4)
    for class_id, scene in enumerate(("red ball", "blue box", "green stripes")):
        camera.select(scene)
        batch = []
        for _ in range(3):
            embedding = embedder.embed(camera.read())
            live.teach(class_id, embedding)
            batch.append(NewExample(class_id, embedder.to_stored(embedding)))
        library.add(batch, model=model.sha256)
    rebuilt = head_from_library(library, model, num_classes=4, decode=embedder.from_stored)
    np.testing.assert_array_equal(sums_of(rebuilt)["sums"], sums_of(live)["sums"])
    library.close()


def test_names_and_classes_beyond_the_configured_ones_are_kept(library):
    library.add([NewExample(5, np.ones(DIM, np.float32))], model=MODEL.sha256)
    library.rename(1, "Mug")
    head = head_from_library(library, MODEL, num_classes=4)
    assert head.num_classes == 6 and head.counts[5] == 1 and head.names[1] == "Mug"
    assert head_from_library(library, ModelIdentity("d" * 64, DIM, "other"), num_classes=4).total == 0


def test_a_saved_head_is_carried_over_once_and_its_file_is_kept(tmp_path):
    old = NearestCentroidHead(DIM, 4, names=["Ball", "Box", "Class 3", "Class 4"])
    for class_id, vector in clustered(30, 2):
        old.teach(class_id, vector)
    store = StateStore(tmp_path)
    store.save(encode_head(old, MODEL))
    files_before = sorted(p.name for p in tmp_path.iterdir())
    library = ExampleLibrary(tmp_path)
    assert migrate_head_state(store, library, MODEL) is True
    head = head_from_library(library, MODEL, num_classes=4)
    np.testing.assert_array_equal(sums_of(head)["sums"], sums_of(old)["sums"])
    assert head.counts == old.counts and head.names == old.names
    assert migrate_head_state(store, library, MODEL) is False  # once: clearing later must not bring it back
    assert set(files_before) <= {p.name for p in tmp_path.iterdir()}  # nothing deleted
    library.close()


def test_an_empty_state_folder_migrates_nothing(tmp_path):
    library = ExampleLibrary(tmp_path)
    assert migrate_head_state(StateStore(tmp_path), library, MODEL) is False
    assert head_from_library(library, MODEL, num_classes=4).total == 0
    library.close()
