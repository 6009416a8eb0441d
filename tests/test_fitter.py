"""The fitted head answers ([head] kind = metric or knn): fitted off the loop after teaching, following every edit."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO, Clock, box_config
from device import metric
from device.app import build_box
from device.camera import FolderCamera, SyntheticCamera
from device.fitter import Fitter
from test_keeper import teach, teach_objects  # noqa: E402  (teach frames to classes, wait until stored)

SMALL = "mobilenet_v1_0.5_160_quant_embedding_extractor.tflite"


def make_box(tmp_path, embedder, camera=None, kind="metric", **sections):
    return build_box(box_config(tmp_path, head={"kind": kind, "smoothing": 1}, **sections), simulate=True,
                     camera=camera or SyntheticCamera(fps=0), embedder=embedder, clock=Clock())


def fitted_counts(box):
    fit = box.loop._fit
    return None if fit is None else [int(c) for c in fit.counts]


def test_the_metric_head_answers_once_fitted_and_follows_every_edit(tmp_path, embedder, coil100):
    camera = FolderCamera(coil100)
    box = make_box(tmp_path, embedder, camera=camera)
    try:
        teach_objects(box, camera, ["obj002", "obj003", "obj004"], 4)
        assert isinstance(box.loop._fit, metric.Fit) and fitted_counts(box) == [4, 4, 4, 0]
        camera.select("obj003")
        camera.seek(40)
        result = box.step()
        assert result.prediction.class_id == 1
        np.testing.assert_allclose(result.prediction.probabilities, box.loop._fit.predict(
            embedder.embed(result.frame)).probabilities, rtol=1e-5)  # the answer is the fit's
        box.delete_examples([e.id for e in box.examples(0).examples[:2]])
        assert fitted_counts(box) == [2, 4, 4, 0]
        box.loop.clear(2)  # a cleared class is never answered, not even before the next fit
        assert box.loop._fit is None or fitted_counts(box)[2] == 0
        box.settle()
        assert fitted_counts(box) == [2, 4, 0, 0]
        camera.select("obj004")
        camera.seek(10)
        assert box.step().prediction.class_id != 2
    finally:
        box.close()


def test_the_fit_after_teaching_burst_by_burst_is_the_fit_of_everything_at_once(tmp_path, embedder, coil100):
    """Taught in five bursts through the box, fitted after each: the head answering is a fit from scratch."""
    camera = FolderCamera(coil100)
    box = make_box(tmp_path, embedder, camera=camera)
    try:
        for class_id, name, views in [(0, "obj002", 3), (1, "obj003", 3), (0, "obj002", 2), (2, "obj004", 4),
                                      (1, "obj003", 1)]:
            camera.select(name)
            camera.seek(9 * class_id + views)  # other views in each burst
            teach(box, class_id, views)
        installed = box.loop._fit
        assert fitted_counts(box) == [5, 4, 4, 0]
        _, vectors, labels, bursts = box.loop.keeper.training_set()
        scratch = metric.fit(vectors, labels, 4, bursts=bursts)
        np.testing.assert_allclose(installed.thresholds, scratch.thresholds)
        np.testing.assert_allclose(installed.views, scratch.views)
        queries = np.stack([embedder.embed(camera.read()).copy() for _ in range(12)])
        a, b = installed.assess(queries), scratch.assess(queries)
        np.testing.assert_array_equal(a.class_ids, b.class_ids)
        np.testing.assert_allclose(a.probabilities, b.probabilities, rtol=1e-6, atol=1e-9)
    finally:
        box.close()


def test_a_model_switch_fits_the_new_model(tmp_path, embedder, coil100):
    mirror = REPO.parent / "shared" / "models"
    camera = FolderCamera(coil100)
    box = make_box(tmp_path, embedder, camera=camera, model={"dir": str(mirror)})
    try:
        teach_objects(box, camera, ["obj002", "obj005"], 3)
        box.switch_model(SMALL)
        assert box.switcher.wait(60)
        box.step()
        box.settle()
        assert box.loop._fit is not None and box.loop._fit.dim == 512 and fitted_counts(box)[:2] == [3, 3]
    finally:
        box.close()


@pytest.mark.parametrize("kind, fitted", [("knn", metric.NeighbourFit), ("centroid", type(None))])
def test_the_other_heads(tmp_path, embedder, kind, fitted):
    box = make_box(tmp_path, embedder, kind=kind)
    try:
        teach(box, 0, 2)
        teach(box, 1, 2)
        assert isinstance(box.loop._fit, fitted)
        assert (box.fitter is None) == (kind == "centroid")
        assert box.step().prediction.status in ("ok", "unknown")
    finally:
        box.close()


def test_things_never_taught_are_unknown_after_a_hold_each_and_a_look_at_what_was_taught(tmp_path, embedder, coil100):
    """As a user does it: each object held up once while it turns (at the default teaching rate), then shown again.

    Centring the features on the camera's running mean of those very objects named 69% of
    the frames of never-taught objects here (a stranger's novelty was judged against
    thresholds from taught classes that had been part of that mean); centring on the
    examples' own mean, left out a class at a time, names few.
    """
    camera = FolderCamera(coil100)
    box = make_box(tmp_path, embedder, camera=camera, teaching={"rate": 4.0})
    try:
        for _ in range(30):
            box.step()
        for class_id, name in enumerate(["obj002", "obj003", "obj004"]):
            camera.select(name)
            box.loop.start_teaching(class_id, hold=True)
            while box.snapshot().loop.classes[class_id].examples < 6:
                box.step()
            box.loop.stop_teaching(class_id)
            box.step()
        for name in ["obj002", "obj003", "obj004"]:
            camera.select(name)
            for _ in range(20):
                box.step()
        box.settle()
        box.fitter.fit_now()
        strangers = ["obj005", "obj006", "obj007", "obj008", "obj009"]
        named = []
        for name in strangers:
            camera.select(name)
            named.extend(box.step().prediction.status == "ok" for _ in range(24))
        # which views a hold catches depends on timing: 0-18% named between runs here, 69% with the running mean
        assert np.mean(named) <= 0.3, f"{np.mean(named):.0%} of the frames of things never taught were named"
        camera.select("obj003")
        assert [box.step().prediction.class_id for _ in range(5)] == [1] * 5
    finally:
        box.close()


def test_many_requests_make_few_fits(tmp_path):
    class Keeper:
        calls = 0

        def training_set(self):
            Keeper.calls += 1
            rng = np.random.default_rng(Keeper.calls)
            return "model", rng.random((6, 8), dtype=np.float32), np.array([0, 0, 0, 1, 1, 1]), np.arange(6)

    installed = []
    fitter = Fitter(Keeper(), num_classes=lambda: 2,
                    install=lambda fit, model: installed.append((fit, model)))
    fitter.start()
    for _ in range(50):
        fitter.request()
    assert fitter.settle(10)
    fitter.close()
    assert 1 <= len(installed) <= 3 and installed[-1][1] == "model"
    with pytest.raises(ValueError, match="kind must be one of"):
        Fitter(Keeper(), kind="softmax", num_classes=lambda: 2, install=print)
