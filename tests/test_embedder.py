"""The feature extractor: preprocessing, the real model, other models, and load errors."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from device.camera import SyntheticCamera, load_rgb
from device.embedder import (
    Embedder,
    centre_crop,
    input_lookup_table,
    load_interpreter_class,
    prepare_frame,
    sha256_of,
)
from device.errors import ModelError, ModelMissingError, RuntimeMissingError
from device.models import MODELS

REPO = Path(__file__).resolve().parent.parent


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def mirror_dir() -> Path:
    return Path(os.environ.get("TEACHBOX_MODEL_MIRROR") or REPO.parent / "shared" / "models")


def coil_view(root: Path, obj: int, angle: int) -> np.ndarray:
    return load_rgb(root / f"obj{obj:03d}" / f"obj{obj}__{angle}.png")


def noise_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


# -- the real model --------------------------------------------------------------------


def test_real_model_signature(embedder):
    assert embedder.dim == 1024
    assert embedder.input_size == (224, 224)
    assert embedder.input_dtype == np.uint8
    facts = embedder.describe()
    assert facts["dim"] == 1024
    assert facts["input_size"] == [224, 224]
    assert facts["model_sha256"] == MODELS[embedder.model_path.name].sha256
    assert facts["runtime"] in ("ai-edge-litert", "tflite-runtime")
    assert facts["threads"] == 2


def test_embedding_is_a_finite_dequantized_vector(embedder):
    frame = SyntheticCamera(fps=0).read()
    vector = embedder.embed(frame)
    assert vector.shape == (1024,)
    assert vector.dtype == np.float32
    assert np.all(np.isfinite(vector))
    # ReLU6 features after average pooling: dequantized into 0..6, and not all zero.
    assert vector.min() >= 0.0
    assert vector.max() <= 6.01
    assert np.count_nonzero(vector) > 100


def test_embedding_is_deterministic_and_buffer_is_reused(embedder):
    first_frame = noise_frame(240, 320, seed=1)
    other_frame = noise_frame(240, 320, seed=2)
    first = embedder.embed(first_frame)
    kept = first.copy()
    other = embedder.embed(other_frame)
    # The returned vector is one buffer overwritten by the next call ...
    assert np.shares_memory(first, other)
    assert not np.array_equal(kept, other)
    # ... and the same frame gives exactly the same embedding again.
    again = embedder.embed(first_frame).copy()
    np.testing.assert_array_equal(again, kept)


def test_infer_equals_embed_of_prepared_frame(embedder):
    frame = noise_frame(300, 400, seed=3)
    by_embed = embedder.embed(frame).copy()
    by_infer = embedder.infer(embedder.prepare(frame)).copy()
    np.testing.assert_array_equal(by_embed, by_infer)


def test_same_image_upscaled_embeds_alike(embedder, coil100):
    image = coil_view(coil100, 2, 0)
    small = embedder.embed(image).copy()
    big = np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)
    assert cosine(small, embedder.embed(big).copy()) > 0.9


def test_wide_frame_is_cropped_not_squashed(embedder, coil100):
    """A wide frame with the object in its centre embeds like the object alone."""
    image = coil_view(coil100, 3, 0)
    height, width = image.shape[:2]
    wide = np.zeros((height, width * 3, 3), dtype=np.uint8)
    wide[:, :width] = (255, 0, 255)  # loud side panels the centre crop must cut away
    wide[:, width:2 * width] = image
    wide[:, 2 * width:] = (0, 255, 255)
    alone = embedder.embed(image).copy()
    np.testing.assert_array_equal(embedder.embed(wide).copy(), alone)


def test_other_objects_are_further_apart_than_neighbouring_views(embedder, coil100):
    def emb(obj, angle):
        return embedder.embed(coil_view(coil100, obj, angle)).copy()

    for obj, other in ((2, 10), (5, 30), (20, 45)):
        a, a_next, b = emb(obj, 0), emb(obj, 5), emb(other, 0)
        same = cosine(a, a_next)
        different = cosine(a, b)
        assert same > different + 0.1, (obj, other, same, different)


# -- prepare_frame ---------------------------------------------------------------------


def banded(height: int, width: int, axis: int) -> np.ndarray:
    """Three equal bands along ``axis``: red, green, blue."""
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    length = frame.shape[axis]
    third = length // 3
    index = [slice(None)] * 3
    for band, colour in enumerate(((255, 0, 0), (0, 255, 0), (0, 0, 255))):
        index[axis] = slice(band * third, (band + 1) * third)
        frame[tuple(index)] = colour
    return frame


def test_prepare_crops_the_centre_of_a_wide_frame():
    prepared = prepare_frame(banded(100, 300, axis=1), (224, 224))
    assert prepared.shape == (224, 224, 3)
    assert prepared.dtype == np.uint8
    assert np.all(prepared == np.array([0, 255, 0], dtype=np.uint8))


def test_prepare_crops_the_centre_of_a_tall_frame():
    prepared = prepare_frame(banded(300, 100, axis=0), (160, 160))
    assert prepared.shape == (160, 160, 3)
    assert np.all(prepared == np.array([0, 255, 0], dtype=np.uint8))


def test_prepare_keeps_aspect_for_a_non_square_input():
    frame = np.zeros((300, 300, 3), dtype=np.uint8)
    frame[:75] = (255, 0, 0)       # top quarter: cut off by a 2:1 crop
    frame[75:225] = (0, 255, 0)    # middle half: what a 2:1 crop keeps
    frame[225:] = (0, 0, 255)      # bottom quarter: cut off
    prepared = prepare_frame(frame, (100, 200))
    assert prepared.shape == (100, 200, 3)
    assert np.all(prepared == np.array([0, 255, 0], dtype=np.uint8))


def test_centre_crop_is_centred_and_of_the_asked_aspect():
    frame = noise_frame(100, 300)
    crop = centre_crop(frame, 1.0)
    assert crop.shape == (100, 100, 3)
    np.testing.assert_array_equal(crop, frame[:, 100:200])
    crop = centre_crop(noise_frame(300, 100), 1.0)
    assert crop.shape == (100, 100, 3)


def test_prepare_resizes_smoothly_not_nearest_neighbour():
    yy, xx = np.mgrid[0:448, 0:448]
    checker = (((xx + yy) % 2) * 255).astype(np.uint8)
    frame = np.stack([checker] * 3, axis=-1)
    prepared = prepare_frame(frame, (224, 224))
    assert prepared.shape == (224, 224, 3)
    # Nearest neighbour would keep only 0s and 255s (or a single one of them);
    # a smooth, anti-aliased filter averages to mid grey everywhere.
    assert prepared.min() >= 100
    assert prepared.max() <= 155


def test_prepare_returns_an_already_sized_frame_untouched():
    frame = noise_frame(224, 224, seed=4)
    prepared = prepare_frame(frame, (224, 224))
    np.testing.assert_array_equal(prepared, frame)
    assert np.shares_memory(prepared, frame)


def test_prepare_crops_without_resizing_when_the_crop_is_the_right_size():
    frame = noise_frame(224, 300, seed=5)
    prepared = prepare_frame(frame, (224, 224))
    np.testing.assert_array_equal(prepared, frame[:, 38:262])


def test_prepare_upscales_small_frames():
    prepared = prepare_frame(noise_frame(32, 48), (224, 224))
    assert prepared.shape == (224, 224, 3)
    assert prepared.dtype == np.uint8


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((224, 224), dtype=np.uint8),
        np.zeros((224, 224, 4), dtype=np.uint8),
        np.zeros((224, 224, 1), dtype=np.uint8),
        np.zeros((224, 224, 3), dtype=np.float32),
        np.zeros((224, 224, 3), dtype=np.uint16),
    ],
    ids=["2d", "rgba", "one-channel", "float32", "uint16"],
)
def test_prepare_rejects_bad_frames(frame):
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        prepare_frame(frame, (224, 224))


def test_embed_rejects_bad_frames(embedder):
    with pytest.raises(ValueError):
        embedder.embed(np.zeros((224, 224, 4), dtype=np.uint8))


# -- input_lookup_table --------------------------------------------------------------------


def test_lookup_table_uint8_raw_pixels_is_none():
    assert input_lookup_table(np.uint8, (1 / 128, 128)) is None


def test_lookup_table_float_maps_pixels_onto_minus_one_to_one():
    table = input_lookup_table(np.float32, (0.0, 0))
    assert table.dtype == np.float32
    assert table.shape == (256,)
    assert table[0] == pytest.approx(-1.0)
    assert table[255] == pytest.approx(1.0)
    assert table[128] == pytest.approx(0.0, abs=0.01)
    assert np.all(np.diff(table) > 0)


def test_lookup_table_int8():
    table = input_lookup_table(np.int8, (1 / 128, 0))
    assert table is not None
    assert table.dtype == np.int8
    assert table.shape == (256,)
    assert table[0] == -128
    assert table[255] == 127
    assert abs(int(table[128])) <= 1
    assert np.all(np.diff(table.astype(np.int16)) >= 0)  # monotonic, no wrap-around


def test_lookup_table_uint8_with_other_quantization_is_a_table():
    table = input_lookup_table(np.uint8, (2 / 255, 0))  # real -1..1 -> 0..1 clipped
    assert table is not None
    assert table.dtype == np.uint8
    assert np.all(np.diff(table.astype(np.int16)) >= 0)


def test_lookup_table_quantized_without_parameters_is_refused():
    with pytest.raises(ModelError, match="quantization"):
        input_lookup_table(np.int8, (0.0, 0))


# -- the other models of the mirror -----------------------------------------------------------


@pytest.mark.parametrize(
    "filename, dim, size",
    [
        ("mobilenet_v2_1.0_224_quant_embedding_extractor.tflite", 1280, 224),
        ("mobilenet_v1_0.5_160_quant_embedding_extractor.tflite", 512, 160),
    ],
)
def test_alternative_models_load_and_embed(filename, dim, size):
    path = mirror_dir() / filename
    if not path.is_file():
        pytest.skip(f"model mirror not found at {path.parent}")
    model = Embedder(path, num_threads=2)
    assert model.dim == dim
    assert model.input_size == (size, size)
    assert MODELS[filename].dim == dim
    assert MODELS[filename].input_size == size
    assert model.sha256 == MODELS[filename].sha256
    frame = SyntheticCamera(fps=0).read()
    vector = model.embed(frame).copy()
    assert vector.shape == (dim,)
    assert np.all(np.isfinite(vector))
    assert vector.max() > 0
    np.testing.assert_array_equal(model.embed(frame), vector)


def test_alternative_models_tell_objects_apart(coil100):
    for filename in ("mobilenet_v2_1.0_224_quant_embedding_extractor.tflite",
                     "mobilenet_v1_0.5_160_quant_embedding_extractor.tflite"):
        path = mirror_dir() / filename
        if not path.is_file():
            pytest.skip(f"model mirror not found at {path.parent}")
        model = Embedder(path, num_threads=2)
        a = model.embed(coil_view(coil100, 2, 0)).copy()
        a_next = model.embed(coil_view(coil100, 2, 5)).copy()
        b = model.embed(coil_view(coil100, 10, 0)).copy()
        assert cosine(a, a_next) > cosine(a, b), filename


def test_default_model_file_matches_its_known_sha256(model_path):
    assert sha256_of(model_path) == MODELS[model_path.name].sha256


# -- errors ------------------------------------------------------------------------------------


def test_missing_model_names_the_fetch_command(tmp_path):
    missing = tmp_path / "nowhere" / "model.tflite"
    with pytest.raises(ModelMissingError) as info:
        Embedder(missing)
    assert "teachbox fetch-model" in str(info.value)
    assert str(missing) in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_a_folder_is_not_a_model(tmp_path):
    with pytest.raises(ModelMissingError, match="teachbox fetch-model"):
        Embedder(tmp_path)


@pytest.mark.parametrize("content", [os.urandom(4096), b""], ids=["random-bytes", "empty"])
def test_corrupt_model_says_fetch_again_with_force(tmp_path, content):
    path = tmp_path / "x.tflite"
    path.write_bytes(content)
    with pytest.raises(ModelError) as info:
        Embedder(path)
    assert "fetch-model --force" in str(info.value)
    assert not isinstance(info.value, ModelMissingError)


def test_truncated_model_says_fetch_again_with_force(tmp_path, model_path):
    path = tmp_path / model_path.name
    path.write_bytes(model_path.read_bytes()[: 1 << 20])
    with pytest.raises(ModelError, match="fetch-model --force"):
        Embedder(path)


_RUNTIME_MODULES = ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime", "tflite_runtime.interpreter")


def test_no_runtime_names_both_and_how_to_install(monkeypatch):
    for name in _RUNTIME_MODULES:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(RuntimeMissingError) as info:
        load_interpreter_class()
    message = str(info.value)
    assert "ai-edge-litert" in message
    assert "tflite-runtime" in message
    assert "pip install ai-edge-litert" in message
    assert isinstance(info.value, ImportError)


def test_embedder_without_runtime_raises_runtime_missing(monkeypatch, model_path):
    for name in _RUNTIME_MODULES:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(RuntimeMissingError, match="pip install ai-edge-litert"):
        Embedder(model_path)


def test_falls_back_to_tflite_runtime(monkeypatch):
    fake_package = types.ModuleType("tflite_runtime")
    fake_module = types.ModuleType("tflite_runtime.interpreter")

    class FakeInterpreter:
        pass

    fake_module.Interpreter = FakeInterpreter
    fake_package.interpreter = fake_module
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", fake_package)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", fake_module)
    interpreter_class, runtime = load_interpreter_class()
    assert interpreter_class is FakeInterpreter
    assert runtime == "tflite-runtime"


def test_prefers_ai_edge_litert():
    _, runtime = load_interpreter_class()
    assert runtime == "ai-edge-litert"


# -- what the runtime prints -------------------------------------------------------------------


def test_loading_the_model_prints_no_runtime_chatter(tmp_path, model_path):
    """LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on every start."""
    env = {k: v for k, v in os.environ.items() if k not in ("TEACHBOX_CONFIG", "TEACHBOX_MODEL_MIRROR")}
    env["XDG_DATA_HOME"] = str(tmp_path)
    result = subprocess.run([str(REPO / ".venv" / "bin" / "teachbox"), "info", "--model", str(model_path)],
                            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "XNNPACK" not in result.stderr
    assert result.stderr == ""
    assert "runtime" in result.stdout


class ChattyInterpreter:
    """Writes to fd 2 the way the native runtime does, then fails or works."""

    fail = False

    def __init__(self, model_path, num_threads):
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")

    def allocate_tensors(self):
        os.write(2, b"ERROR: Didn't find op for builtin opcode 'FANCY_OP' version '9'\n")
        if self.fail:
            raise RuntimeError("Encountered unresolved custom op")

    def get_input_details(self):
        return []  # not a model teachbox can use: refused after loading

    get_output_details = get_input_details


def test_runtime_errors_while_loading_reach_the_log_and_info_does_not(monkeypatch, capfd, caplog, model_path):
    class Failing(ChattyInterpreter):
        fail = True

    monkeypatch.setattr("device.embedder.load_interpreter_class", lambda: (Failing, "fake-runtime"))
    with caplog.at_level(logging.DEBUG, logger="device.embedder"):
        with pytest.raises(ModelError, match="unresolved custom op"):
            Embedder(model_path)
    err = capfd.readouterr().err
    assert "FANCY_OP" not in err and "XNNPACK" not in err  # nothing raw on the terminal ...
    by_level = {level: [r.getMessage() for r in caplog.records if r.levelno == level]
                for level in (logging.DEBUG, logging.WARNING)}
    assert any("FANCY_OP" in m and model_path.name in m for m in by_level[logging.WARNING]), by_level  # ... but logged
    assert not any("XNNPACK" in m for m in by_level[logging.WARNING])
    assert any("XNNPACK" in m for m in by_level[logging.DEBUG])  # still there with --log-level debug


def test_stderr_is_given_back_after_loading(monkeypatch, capfd, model_path):
    monkeypatch.setattr("device.embedder.load_interpreter_class", lambda: (ChattyInterpreter, "fake-runtime"))
    with pytest.raises(ModelError, match="one input"):  # the fake has no tensors
        Embedder(model_path)
    os.write(2, b"written after loading\n")
    sys.stderr.write("and from Python\n")
    sys.stderr.flush()
    assert capfd.readouterr().err == "written after loading\nand from Python\n"


def test_the_stored_form_is_the_models_own_bytes_and_gives_back_the_same_embedding(embedder):
    from device.camera import SyntheticCamera

    camera = SyntheticCamera(fps=0)
    for scene in ("red ball", "blue box", "green stripes"):
        camera.select(scene)
        embedding = embedder.embed(camera.read()).copy()
        stored = embedder.to_stored(embedding)
        assert stored.dtype == np.uint8 and stored.nbytes == embedder.dim  # 1 KB for MobileNet V1
        np.testing.assert_array_equal(embedder.from_stored(stored), embedding)
