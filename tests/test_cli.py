"""The ``teachbox`` command, run in-process through ``device.cli.main`` (and once as a program)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shlex
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from device import __version__
from device.cli import main
from device.config import Config, load_config
from device.embedder import sha256_of
from device.models import DEFAULT_MODEL, MODELS

REPO = Path(__file__).resolve().parent.parent
TEACHBOX = REPO / ".venv" / "bin" / "teachbox"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No user config, data folder in tmp, working folder tmp (no ./models), no network; the root log
    level is restored."""
    for name in ("TEACHBOX_CONFIG", "TEACHBOX_MODEL_MIRROR", "STATE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)

    def offline(*args, **kwargs):
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)


def shared_mirror() -> Path:
    return REPO.parent / "shared" / "models"


def subprocess_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TEACHBOX_CONFIG", "TEACHBOX_MODEL_MIRROR")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    return env


def tiny_dataset(root: Path, per_class: int = 4) -> Path:
    rng = np.random.default_rng(0)
    for name, colour in (("red thing", (220, 30, 30)), ("blue thing", (30, 30, 220))):
        folder = root / name
        folder.mkdir(parents=True)
        for index in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 12, size=(32, 40, 3)), 0, 255).astype(np.uint8)
            pixels[10:20, 12:28] = 255 - pixels[10:20, 12:28]
            Image.fromarray(pixels).save(folder / f"view{index}.png")
    return root


def only_json(out: str) -> dict:
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    result = json.loads(lines[0])
    assert isinstance(result, dict)
    return result


# -- eval -------------------------------------------------------------------------------------


def test_eval_coil100_five_shot_five_way(capsys, coil100, model_path):
    code = main(["eval", "--data", str(coil100), "--shots", "5", "--ways", "5", "--json",
                 "--model", str(model_path)])
    assert code == 0
    result = only_json(capsys.readouterr().out)
    assert result["accuracy"] >= 0.97
    assert 0.0 <= result["accuracy_std"] <= 0.05
    assert result["shots"] == 5 and result["ways"] == 5
    assert result["protocol"] == "random"
    assert result["splits"] == 10 and len(result["split_accuracies"]) == 10
    assert result["classes_available"] == len([p for p in coil100.iterdir() if p.is_dir()])
    assert result["model"] == model_path.name
    # every view not taught is asked about: 5 classes x (up to 72 - 5) views per split
    assert 10 * 5 * 50 <= result["queries"] <= 10 * 5 * 67


def test_eval_coil100_arc_protocol(capsys, coil100, model_path):
    code = main(["eval", "--data", str(coil100), "--shots", "5", "--ways", "5", "--protocol", "arc",
                 "--splits", "3", "--seed", "1", "--json", "--model", str(model_path)])
    assert code == 0
    result = only_json(capsys.readouterr().out)
    assert result["protocol"] == "arc"
    assert result["splits"] == 3 and result["seed"] == 1
    assert result["accuracy"] >= 0.9
    assert "accuracy_std" in result


@pytest.mark.parametrize("head", ["metric", "knn"])
def test_eval_teaches_the_other_heads(capsys, coil100, model_path, head):
    code = main(["eval", "--data", str(coil100), "--shots", "5", "--ways", "5", "--splits", "3", "--head", head,
                 "--json", "--model", str(model_path)])
    assert code == 0
    result = only_json(capsys.readouterr().out)
    assert result["head"] == head and result["accuracy"] >= 0.9  # "unknown" counts as wrong


def test_eval_with_classes_never_taught_measures_the_unknown(capsys, coil100, model_path):
    figures = {}
    for head in ("centroid", "metric"):
        code = main(["eval", "--data", str(coil100), "--shots", "5", "--ways", "5", "--unknown-classes", "5",
                     "--splits", "2", "--head", head, "--json", "--model", str(model_path)])
        assert code == 0
        figures[head] = only_json(capsys.readouterr().out)
    for result in figures.values():
        assert result["unknown_classes"] == 5 and 0.5 <= result["unknown_auroc"] <= 1.0
        assert 0.0 <= result["calibration_error"] <= 1.0
    # the live head never says unknown: half of the queries (the untaught things) are wrong
    assert figures["centroid"]["open_set_accuracy"] < 0.6 < figures["metric"]["open_set_accuracy"]
    # and the default head's confident answers are right, counting what it names of things never taught
    confident = figures["metric"]
    assert confident["confident_answers"] > 100 and confident["confident_accuracy"] >= 0.9
    assert figures["metric"]["calibration_error"] < figures["centroid"]["calibration_error"]


def test_eval_refuses_more_unknown_classes_than_there_are(caplog, tmp_path, model_path):
    for name in ("a", "b", "c"):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(3):
            Image.new("RGB", (32, 32), (i * 40, 0, 0)).save(folder / f"{i}.png")
    assert main(["eval", "--data", str(tmp_path), "--shots", "1", "--ways", "2", "--unknown-classes", "2",
                 "--model", str(model_path)]) == 2
    assert "unknown classes (2)" in caplog.text


def test_eval_is_reproducible_with_a_seed(capsys, tmp_path, model_path):
    data = tiny_dataset(tmp_path / "data", per_class=5)
    argv = ["eval", "--data", str(data), "--shots", "2", "--splits", "4", "--seed", "7", "--json",
            "--model", str(model_path)]
    assert main(argv) == 0
    first = only_json(capsys.readouterr().out)
    assert main(argv) == 0
    second = only_json(capsys.readouterr().out)
    assert first["split_accuracies"] == second["split_accuracies"]


def test_eval_on_two_tiny_classes(capsys, tmp_path, model_path):
    data = tiny_dataset(tmp_path / "data")
    code = main(["eval", "--data", str(data), "--shots", "1", "--json", "--model", str(model_path)])
    assert code == 0
    result = only_json(capsys.readouterr().out)
    assert result["ways"] == 2
    assert result["classes_available"] == 2
    assert result["queries"] == 10 * 2 * 3
    assert result["accuracy"] == 1.0


def test_eval_prints_a_readable_line(capsys, tmp_path, model_path):
    data = tiny_dataset(tmp_path / "data")
    code = main(["eval", "--data", str(data), "--shots", "1", "--splits", "2", "--model", str(model_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert re.search(r"accuracy 1\.0000 \+/- 0\.0000", out), out
    assert "1-shot, 2-way" in out


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--shots", "4"], "no more than 4 images"),
        (["--shots", "1", "--ways", "3"], "ways = 3"),
        (["--shots", "0"], "shots (0)"),
    ],
    ids=["too-many-shots", "too-many-ways", "zero-shots"],
)
def test_eval_refuses_impossible_requests(caplog, tmp_path, model_path, extra, words):
    data = tiny_dataset(tmp_path / "data")
    code = main(["eval", "--data", str(data), "--model", str(model_path)] + extra)
    assert code == 2
    assert words in caplog.text


def test_eval_missing_data_folder(caplog, tmp_path, model_path):
    code = main(["eval", "--data", str(tmp_path / "nope"), "--shots", "1", "--model", str(model_path)])
    assert code == 2
    assert "does not exist" in caplog.text


def test_eval_needs_two_classes(caplog, tmp_path, model_path):
    data = tiny_dataset(tmp_path / "data")
    for image in (data / "blue thing").iterdir():
        image.unlink()
    code = main(["eval", "--data", str(data), "--shots", "1", "--model", str(model_path)])
    assert code == 2
    assert "at least 2" in caplog.text


def test_eval_reports_the_picture_source_figures(capsys, tmp_path, model_path):
    data = tiny_dataset(tmp_path / "data")
    argv = ["eval", "--data", str(data), "--shots", "1", "--splits", "2", "--json", "--model", str(model_path)]
    assert main(argv) == 0
    result = only_json(capsys.readouterr().out)
    assert result["source"] == "picture" and result["dim"] == 1024
    assert result["no_detection_rate"] == 0.0 and result["images"] == 8
    assert result["accuracy_detected"] == result["accuracy"] and result["queries_detected"] == result["queries"]
    assert result["fps"] > 0 and result["classes_untaught"] == {} and "people" not in result


class _HandlessSource:
    """A hand source that finds a hand only in bright pictures."""

    name, dim = "hand", 4

    def reset(self):
        pass

    def embed(self, frame):
        mean = frame.reshape(-1, 3).mean(axis=0)
        return None if mean.max() < 10 else np.array([*mean / np.linalg.norm(mean), 1.0], np.float32)

    def describe(self):
        return {"source": "hand", "model": "hand_landmark_full.tflite", "dim": 4}


def test_eval_of_another_source_counts_what_it_does_not_find(capsys, monkeypatch, tmp_path):
    import device.cli

    opened = []
    monkeypatch.setattr(device.cli, "_open_source", lambda name, config: opened.append(name) or _HandlessSource())
    data = tiny_dataset(tmp_path / "data", per_class=5)
    Image.new("RGB", (32, 40)).save(data / "red thing" / "view9.png")  # a dark one: no hand in it
    assert main(["eval", "--data", str(data), "--shots", "1", "--splits", "3", "--source", "hand", "--json"]) == 0
    result = only_json(capsys.readouterr().out)
    assert opened == ["hand"] and result["source"] == "hand" and result["model"] == "hand_landmark_full.tflite"
    assert result["no_detection_rate"] == pytest.approx(1 / 11)
    assert result["accuracy_detected"] == 1.0
    assert result["accuracy"] == pytest.approx((4 + 4) / 9)  # red: 5 asked, 1 of them dark
    assert main(["eval", "--data", str(data), "--shots", "1", "--splits", "3", "--source", "hand"]) == 0
    line = capsys.readouterr().out
    assert "hand source" in line and "no detection 9.1% of 11 images" in line and "images/s" in line


def test_eval_refuses_an_unknown_source(capsys):
    with pytest.raises(SystemExit) as info:
        main(["eval", "--data", "data", "--shots", "1", "--source", "feet"])
    assert info.value.code == 2
    assert "invalid choice: 'feet'" in capsys.readouterr().err


def test_eval_help_offers_the_sources_and_the_person_protocol(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--source {picture,hand,face,pose}" in text
    assert "--protocol {random,arc,person}" in text and "--person-pattern REGEX" in text
    assert "rewards recognising the person" in text


def test_eval_person_protocol_refuses_names_without_person_ids(caplog, tmp_path, model_path):
    data = tiny_dataset(tmp_path / "data")  # view0.png ...: no person id
    code = main(["eval", "--data", str(data), "--shots", "1", "--protocol", "person", "--model", str(model_path)])
    assert code == 2
    assert "needs a person id in every file name" in caplog.text and "--person-pattern REGEX" in caplog.text


def test_eval_person_protocol_on_real_pictures(capsys, tmp_path, model_path):
    data = tiny_dataset(tmp_path / "data", per_class=6)
    for image in data.glob("*/*.png"):  # view0 .. view5: 3 people, 2 pictures of each in each class
        image.rename(image.with_name(f"p{int(image.stem[-1]) % 3}_{image.name}"))
    code = main(["eval", "--data", str(data), "--shots", "1", "--protocol", "person", "--teach-people", "1",
                 "--splits", "3", "--json", "--model", str(model_path)])
    assert code == 0
    result = only_json(capsys.readouterr().out)
    assert result["people"] == 3 and result["teach_people"] == 1
    assert result["queries"] == 3 * 2 * 4  # the 2 other people's 4 pictures per class, every split


# -- info ---------------------------------------------------------------------------------------


def test_info_json(capsys, model_path):
    code = main(["info", "--json", "--model", str(model_path), "--threads", "3"])
    assert code == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["runtime"] in ("ai-edge-litert", "tflite-runtime")
    assert facts["threads"] == 3
    assert facts["model"] == model_path.name
    assert facts["dim"] == 1024
    assert facts["model_sha256"] == MODELS[DEFAULT_MODEL].sha256
    assert facts["version"] == __version__
    assert "model_error" not in facts


def test_info_all_cores_by_default(capsys, model_path):
    assert main(["info", "--json", "--model", str(model_path)]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["threads"] == (os.cpu_count() or 1)


def test_info_without_model_reports_how_to_fetch(capsys, caplog, tmp_path):
    code = main(["info", "--json", "--model-dir", str(tmp_path / "empty")])
    assert code == 2  # a box that cannot run is not "ok"
    facts = json.loads(capsys.readouterr().out)  # the facts it has are still printed
    assert "teachbox fetch-model" in facts["model_error"]
    assert facts["model_dir"] == str(tmp_path / "empty")
    assert facts["version"] == __version__
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "teachbox fetch-model" in errors[0] and str(tmp_path / "empty") in errors[0]


def test_info_text_without_model_as_a_program(tmp_path):
    result = subprocess.run([str(TEACHBOX), "info", "--model-dir", str(tmp_path / "empty")], capture_output=True,
                            text=True, timeout=120, env=subprocess_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert re.search(r"^model_dir\s+" + re.escape(str(tmp_path / "empty")) + "$", result.stdout, re.M), result.stdout
    assert re.search(r"^ERROR .*does not exist.*teachbox fetch-model", result.stderr, re.M), result.stderr


def test_info_text(capsys, model_path):
    assert main(["info", "--model", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^runtime\s+ai-edge-litert|^runtime\s+tflite-runtime", out, re.M), out
    assert re.search(r"^dim\s+1024$", out, re.M), out


# -- fetch-model -----------------------------------------------------------------------------------


def test_fetch_model_from_mirror(capsys, tmp_path):
    if not (shared_mirror() / DEFAULT_MODEL).is_file():
        pytest.skip(f"no model mirror at {shared_mirror()}")
    model_dir = tmp_path / "models"
    code = main(["fetch-model", "--mirror", str(shared_mirror()), "--model-dir", str(model_dir)])
    assert code == 0
    installed = model_dir / DEFAULT_MODEL
    assert installed.is_file()
    assert sha256_of(installed) == MODELS[DEFAULT_MODEL].sha256
    assert capsys.readouterr().out.strip() == str(installed)


def test_fetch_other_model_by_name(capsys, tmp_path):
    name = "mobilenet_v1_0.5_160_quant_embedding_extractor.tflite"
    if not (shared_mirror() / name).is_file():
        pytest.skip(f"no model mirror at {shared_mirror()}")
    code = main(["fetch-model", "--mirror", str(shared_mirror()), "--model-dir", str(tmp_path), "--name", name])
    assert code == 0
    assert sha256_of(tmp_path / name) == MODELS[name].sha256


def test_fetch_model_into_configured_dir(capsys, tmp_path):
    if not (shared_mirror() / DEFAULT_MODEL).is_file():
        pytest.skip(f"no model mirror at {shared_mirror()}")
    config = tmp_path / "teachbox.toml"
    config.write_text(f'[model]\ndir = "{tmp_path / "configured"}"\n')
    code = main(["fetch-model", "--config", str(config), "--mirror", str(shared_mirror())])
    assert code == 0
    assert (tmp_path / "configured" / DEFAULT_MODEL).is_file()


def test_fetch_model_bad_mirror_exits_2(caplog, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / DEFAULT_MODEL).write_bytes(b"wrong bytes")
    model_dir = tmp_path / "models"
    code = main(["fetch-model", "--mirror", str(bad), "--model-dir", str(model_dir)])
    assert code == 2
    assert "sha256" in caplog.text
    assert not (model_dir / DEFAULT_MODEL).exists()


def test_fetch_model_offline_says_use_mirror(caplog, tmp_path):
    code = main(["fetch-model", "--model-dir", str(tmp_path / "models")])
    assert code == 2
    assert "--mirror" in caplog.text


def test_fetch_a_landmark_source_from_mirror(capsys, tmp_path):
    from device.models import landmark_models

    if not (shared_mirror() / "hand_landmark_full.tflite").is_file():
        pytest.skip(f"no model mirror at {shared_mirror()}")
    model_dir = tmp_path / "models"
    assert main(["fetch-model", "--mirror", str(shared_mirror()), "--model-dir", str(model_dir),
                 "--source", "hand"]) == 0
    hand = list(landmark_models("hand"))
    assert capsys.readouterr().out.split() == [str(model_dir / name) for name in hand]
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(hand)  # not the default model
    for name in hand:
        assert sha256_of(model_dir / name) == MODELS[name].sha256
    assert main(["fetch-model", "--mirror", str(shared_mirror()), "--model-dir", str(model_dir),
                 "--source", "all", "--name", DEFAULT_MODEL]) == 0
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(list(landmark_models()) + [DEFAULT_MODEL])


def test_fetch_a_landmark_file_by_name(capsys, tmp_path):
    if not (shared_mirror() / "face_landmark.tflite").is_file():
        pytest.skip(f"no model mirror at {shared_mirror()}")
    assert main(["fetch-model", "--mirror", str(shared_mirror()), "--model-dir", str(tmp_path),
                 "--name", "face_landmark.tflite"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "face_landmark.tflite")
    assert sha256_of(tmp_path / "face_landmark.tflite") == MODELS["face_landmark.tflite"].sha256


def test_fetch_a_landmark_source_offline_names_the_wheel_and_the_mirror(caplog, tmp_path):
    from device.models import MEDIAPIPE_WHEEL

    assert main(["fetch-model", "--model-dir", str(tmp_path / "models"), "--source", "pose"]) == 2
    assert MEDIAPIPE_WHEEL.name in caplog.text and "--mirror DIR" in caplog.text
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_fetch_an_unknown_source_is_refused(capsys):
    with pytest.raises(SystemExit) as info:
        main(["fetch-model", "--source", "feet"])
    assert info.value.code == 2
    assert "invalid choice: 'feet'" in capsys.readouterr().err


def test_fetch_model_help_names_the_sources(capsys):
    with pytest.raises(SystemExit):
        main(["fetch-model", "--help"])
    out = capsys.readouterr().out
    assert "--source {hand,face,pose,all}" in out and "mediapipe 0.10.14 wheel" in out
    assert "hand_landmark_full.tflite" in out


def test_missing_landmark_file_hint_is_a_command_that_fetches_it(tmp_path, monkeypatch):
    from device.models import fetch_hint

    if not (shared_mirror() / "palm_detection_lite.tflite").is_file():
        pytest.skip(f"no model mirror at {shared_mirror()}")
    monkeypatch.setenv("TEACHBOX_MODEL_MIRROR", str(shared_mirror()))
    model_dir = tmp_path / "models"
    hint = fetch_hint(model_dir / "palm_detection_lite.tflite")
    words = shlex.split(hint.removeprefix("Fetch it with: "))
    assert words[:2] == ["teachbox", "fetch-model"] and words[words.index("--source") + 1] == "hand"
    monkeypatch.delenv("TEACHBOX_MODEL_MIRROR")
    assert main(words[1:]) == 0
    assert sha256_of(model_dir / "palm_detection_lite.tflite") == MODELS["palm_detection_lite.tflite"].sha256


# -- run ---------------------------------------------------------------------------------------


def test_run_without_model_exits_2(caplog, capsys, tmp_path):
    code = main(["run", "--simulate", "--model-dir", str(tmp_path / "no-models"),
                 "--state-dir", str(tmp_path / "state")])
    assert code == 2
    assert "teachbox fetch-model" in caplog.text
    assert "Traceback" not in capsys.readouterr().err


def test_run_without_model_as_a_program(tmp_path):
    result = subprocess.run(
        [str(TEACHBOX), "run", "--simulate", "--model", str(tmp_path / "missing" / DEFAULT_MODEL),
         "--state-dir", str(tmp_path / "state")],
        capture_output=True, text=True, timeout=120, env=subprocess_env(tmp_path), cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "teachbox fetch-model" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# -- config errors ---------------------------------------------------------------------------------


def test_bad_config_key_exits_2_naming_the_key(caplog, capsys, tmp_path, model_path):
    config = tmp_path / "teachbox.toml"
    config.write_text("[camera]\ntimout = 3.0\n")
    code = main(["info", "--config", str(config), "--model", str(model_path)])
    assert code == 2
    assert "timout" in caplog.text
    assert "timeout" in caplog.text  # the suggestion
    assert str(config) in caplog.text
    assert "Traceback" not in capsys.readouterr().err


def test_bad_config_key_for_run_exits_2(caplog, tmp_path):
    config = tmp_path / "teachbox.toml"
    config.write_text("[head]\nclases = 4\n")
    code = main(["run", "--simulate", "--config", str(config), "--state-dir", str(tmp_path / "state")])
    assert code == 2
    assert "clases" in caplog.text


def test_config_from_environment_is_used(caplog, tmp_path, monkeypatch, model_path):
    config = tmp_path / "env.toml"
    config.write_text("[storage]\nsave_intervall = 5\n")
    monkeypatch.setenv("TEACHBOX_CONFIG", str(config))
    assert main(["info", "--model", str(model_path)]) == 2
    assert "save_intervall" in caplog.text


@pytest.mark.parametrize(
    "text, words",
    [
        ("[camra]\nsource = \"synthetic\"\n", "camra"),
        ("[model]\nthreads = -1\n", "threads"),
        ("[log]\nlevel = \"loud\"\n", "loud"),
        ("[model\n", "not valid TOML"),
    ],
    ids=["section", "range", "choice", "syntax"],
)
def test_other_config_errors_exit_2(caplog, tmp_path, model_path, text, words):
    config = tmp_path / "teachbox.toml"
    config.write_text(text)
    assert main(["info", "--config", str(config), "--model", str(model_path)]) == 2
    assert words in caplog.text


def test_missing_config_file_exits_2(caplog, tmp_path):
    assert main(["info", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml" in caplog.text


def test_out_of_range_option_exits_2(caplog, model_path):
    assert main(["info", "--model", str(model_path), "--threads", "1000"]) == 2
    assert "threads" in caplog.text


# -- default-config, help, version ---------------------------------------------------------------


def test_default_config_is_commented_valid_toml(capsys, tmp_path):
    assert main(["default-config"]) == 0
    text = capsys.readouterr().out
    parsed = tomllib.loads(text)
    assert set(parsed) == {f.name for f in dataclasses.fields(Config)} - {"rules"}  # [[rules]]: none by default
    assert {"camera", "model", "head", "storage", "log"} <= set(parsed)
    assert all(section == {} for section in parsed.values())  # every key is commented out
    # Uncommenting every key gives a file that loads to exactly the defaults.
    uncommented = re.sub(r"^# (\w+ = )", r"\1", text, flags=re.M)
    assert uncommented != text
    path = tmp_path / "all.toml"
    path.write_text(uncommented)
    assert tomllib.loads(uncommented)["camera"]["timeout"] == 2.0
    assert load_config(path) == Config()


def test_help_as_a_program(tmp_path):
    result = subprocess.run([str(TEACHBOX), "--help"], capture_output=True, text=True, timeout=60,
                            env=subprocess_env(tmp_path))
    assert result.returncode == 0, result.stderr
    for command in ("run", "eval", "info", "fetch-model", "default-config"):
        assert command in result.stdout


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["teach-me"])
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_module_entry_point(tmp_path):
    result = subprocess.run([sys.executable, "-m", "device", "default-config"], capture_output=True, text=True,
                            timeout=60, cwd=REPO, env=subprocess_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "[camera]" in result.stdout


def test_fetch_into_a_folder_that_cannot_exist_is_a_clean_error(caplog, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = main(["fetch-model", "--mirror", str(shared_mirror()), "--model-dir", str(blocker / "models")])
    assert code == 2
    assert "cannot install" in caplog.text and str(blocker) in caplog.text
    assert "Traceback" not in caplog.text


def test_fetched_model_is_readable_by_the_service_user(tmp_path):
    assert main(["fetch-model", "--mirror", str(shared_mirror()), "--model-dir", str(tmp_path)]) == 0
    assert (tmp_path / DEFAULT_MODEL).stat().st_mode & 0o777 == 0o644


def test_missing_alternative_model_hint_names_it(caplog, tmp_path):
    missing = tmp_path / "mobilenet_v1_0.5_160_quant_embedding_extractor.tflite"
    code = main(["run", "--simulate", "--model", str(missing), "--state-dir", str(tmp_path / "s")])
    assert code == 2
    assert "--name mobilenet_v1_0.5_160_quant_embedding_extractor.tflite" in caplog.text


def test_unwritable_state_folder_stops_start_up_with_the_reason(caplog, tmp_path, model_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = main(["run", "--simulate", "--camera", "synthetic", "--model", str(model_path),
                 "--state-dir", str(blocker / "state"), "--port", "0"])
    assert code == 2
    assert "cannot be written" in caplog.text and "--state-dir" in caplog.text


def test_unknown_synthetic_scene_is_refused(caplog, tmp_path, model_path):
    code = main(["run", "--simulate", "--camera", "synthetic:purple cow", "--model", str(model_path),
                 "--state-dir", str(tmp_path / "s")])
    assert code == 2
    assert "red ball" in caplog.text


def test_info_names_the_config_file_from_the_environment(capsys, tmp_path, monkeypatch, model_path):
    config = tmp_path / "c.toml"
    config.write_text("[head]\nclasses = 3\n")
    monkeypatch.setenv("TEACHBOX_CONFIG", str(config))
    assert main(["info", "--json", "--model", str(model_path)]) == 0
    assert json.loads(capsys.readouterr().out)["config"] == str(config)


# -- packaging and README ------------------------------------------------------------------------


def _minimum_python() -> tuple:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    match = re.fullmatch(r">=\s*3\.(\d+)", project["requires-python"])
    assert match, project["requires-python"]
    return (3, int(match.group(1)))


def test_readme_asks_for_the_python_that_pyproject_requires():
    wanted = "%d.%d" % _minimum_python()
    said = re.findall(r"Python (3\.\d+)\+", (REPO / "README.md").read_text())
    assert said and set(said) == {wanted}, f"README says Python {said}, pyproject requires >= {wanted}"


def test_no_dependency_marker_that_requires_python_already_implies():
    minimum = _minimum_python()
    for dependency in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]:
        for low in re.findall(r"python_version\s*>=\s*['\"]3\.(\d+)['\"]", dependency):
            assert (3, int(low)) > minimum, f"{dependency!r}: the marker is always true with Python >= 3.{minimum[1]}"


SET_UP_AND_CLI_SECTIONS = ("Two commands", "The `teachbox` command", "Install on a Raspberry Pi", "Configuration",
                           "Evaluate")


def readme_section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", (REPO / "README.md").read_text(), re.M | re.S)
    assert match, f"README has no section {title!r}"
    return match.group(1)


@pytest.mark.parametrize("title", SET_UP_AND_CLI_SECTIONS)
def test_readme_runs_teachbox_where_set_up_puts_it(title):
    """Set-up puts teachbox into .venv/bin (or /opt/teachbox/venv/bin), not on PATH."""
    text = readme_section(title)
    for prefix, command in re.findall(r"(\S*)\bteachbox (run|eval|info|fetch-model|default-config)\b", text):
        assert prefix.endswith("venv/bin/"), f"README {title!r}: `{prefix}teachbox {command}` is not on PATH"


def test_every_data_file_ships_in_a_declared_package():
    """setuptools warns about a data folder that is not a declared package ("web_ui.static is absent from
    the packages configuration"); and a file no package-data pattern matches is not in the wheel."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages, data = set(setuptools["packages"]), setuptools.get("package-data", {})
    top = {name for name in packages if "." not in name}
    for path in sorted(p for name in top for p in (REPO / name).rglob("*") if p.is_file()):
        relative = path.relative_to(REPO)
        if path.suffix in (".py", ".pyc") or "__pycache__" in relative.parts:
            continue
        package = ".".join(relative.parent.parts)
        assert package in packages, f"{relative}: its folder {package!r} is not in [tool.setuptools] packages"
        patterns = data.get(package, [])
        assert any(path.match(f"{relative.parent}/{pattern}") for pattern in patterns), \
            f"{relative} is matched by no [tool.setuptools.package-data] {package!r} pattern ({patterns})"


# -- output into a closed pipe (`teachbox ... | head -1`) ----------------------------------------


def run_into_a_closed_pipe(tmp_path, *args) -> subprocess.CompletedProcess:
    """Run teachbox with stdout a pipe whose reader has already gone, like `| head -1` after one line."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([str(TEACHBOX), *map(str, args)], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=120, env=subprocess_env(tmp_path), cwd=tmp_path)
    finally:
        os.close(write_end)


def assert_ended_quietly(result: subprocess.CompletedProcess) -> None:
    assert result.returncode in (0, 141), result.stderr  # 141 = 128 + SIGPIPE, as `yes | head -1` ends
    assert "Broken pipe" not in result.stderr and "Traceback" not in result.stderr
    assert "Exception ignored" not in result.stderr
    assert result.stderr == ""


def test_default_config_into_a_closed_pipe_ends_quietly(tmp_path):
    assert_ended_quietly(run_into_a_closed_pipe(tmp_path, "default-config"))


def test_info_json_into_a_closed_pipe_ends_quietly(tmp_path, model_path):
    assert_ended_quietly(run_into_a_closed_pipe(tmp_path, "info", "--json", "--model", model_path))


def test_eval_json_into_a_closed_pipe_ends_quietly(tmp_path, model_path):
    data = tiny_dataset(tmp_path / "data")
    assert_ended_quietly(run_into_a_closed_pipe(tmp_path, "eval", "--data", data, "--shots", "1", "--splits", "2",
                                                "--json", "--model", model_path))


# -- the fetch hint when the model is missing ------------------------------------------------------


def copy_mirror(folder: Path, model_path: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / DEFAULT_MODEL).write_bytes(model_path.read_bytes())
    return folder


def the_fetch_command(text: str) -> list:
    match = re.search(r"Fetch it with: (.+?)\s*$", text, re.M)
    assert match, text
    return shlex.split(match.group(1))


def test_missing_model_hint_names_the_mirror_from_the_environment(caplog, tmp_path, monkeypatch, model_path):
    mirror = copy_mirror(tmp_path / "my mirror", model_path)
    monkeypatch.setenv("TEACHBOX_MODEL_MIRROR", str(mirror))
    model_dir = tmp_path / "models"
    assert main(["info", "--model-dir", str(model_dir)]) == 2
    words = the_fetch_command(caplog.text)
    assert words[:2] == ["teachbox", "fetch-model"]
    assert words[words.index("--mirror") + 1] == str(mirror)
    assert words[words.index("--model-dir") + 1] == str(model_dir)
    monkeypatch.delenv("TEACHBOX_MODEL_MIRROR")  # the command works on its own, e.g. under sudo
    assert main(words[1:]) == 0
    assert main(["info", "--model-dir", str(model_dir)]) == 0


def test_missing_model_hint_without_a_mirror_downloads(caplog, tmp_path):
    assert main(["info", "--model-dir", str(tmp_path / "models")]) == 2
    assert "--mirror" not in the_fetch_command(caplog.text)  # the default model can be downloaded


def test_missing_mirror_only_model_hint_uses_the_known_mirror(caplog, tmp_path, monkeypatch):
    name = "mobilenet_v1_0.5_160_quant_embedding_extractor.tflite"
    monkeypatch.setenv("TEACHBOX_MODEL_MIRROR", str(shared_mirror()))
    assert main(["info", "--model", str(tmp_path / name)]) == 2
    words = the_fetch_command(caplog.text)
    assert words[words.index("--name") + 1] == name
    assert words[words.index("--mirror") + 1] == str(shared_mirror())


def test_missing_model_hint_is_a_command_that_works_as_printed(tmp_path, model_path):
    """Set-up does not put teachbox on PATH: the hint must name the program it was run as."""
    mirror = copy_mirror(tmp_path / "mirror", model_path)
    env = dict(subprocess_env(tmp_path), PATH="/usr/bin:/bin", TEACHBOX_MODEL_MIRROR=str(mirror))
    model_dir = tmp_path / "models"
    first = subprocess.run([str(TEACHBOX), "info", "--model-dir", str(model_dir)], capture_output=True, text=True,
                           timeout=120, env=env, cwd=tmp_path)
    assert first.returncode == 2
    words = the_fetch_command(first.stderr)
    assert "--mirror" in words  # copied from the mirror: this test never downloads
    del env["TEACHBOX_MODEL_MIRROR"]
    fetched = subprocess.run(words, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    assert sha256_of(model_dir / DEFAULT_MODEL) == MODELS[DEFAULT_MODEL].sha256


# -- where the model is looked for -------------------------------------------------------------------


@pytest.fixture
def checkout(tmp_path, monkeypatch, model_path) -> Path:
    """A working folder like the repository after scripts/dev.sh: the model in ./models."""
    folder = tmp_path / "checkout"
    (folder / "models").mkdir(parents=True)
    (folder / "models" / DEFAULT_MODEL).write_bytes(model_path.read_bytes())
    monkeypatch.chdir(folder)
    return folder


def test_info_finds_the_model_in_the_local_models_folder(capsys, checkout):
    assert main(["info", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["model_path"] == str(checkout / "models" / DEFAULT_MODEL)
    assert facts["model_dir"] == str(checkout / "models")


def test_eval_finds_the_model_in_the_local_models_folder(capsys, checkout, tmp_path):
    data = tiny_dataset(tmp_path / "data")
    assert main(["eval", "--data", str(data), "--shots", "1", "--splits", "2", "--json"]) == 0
    assert only_json(capsys.readouterr().out)["model"] == DEFAULT_MODEL


def test_run_finds_the_model_in_the_local_models_folder(caplog, checkout, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    # the model loads; start-up then stops at the state folder, the next thing it checks
    code = main(["run", "--simulate", "--camera", "synthetic", "--state-dir", str(blocker / "state"), "--port", "0"])
    assert code == 2
    assert "cannot be written" in caplog.text and "does not exist" not in caplog.text


def test_fetch_model_refreshes_the_local_models_folder(capsys, checkout):
    assert main(["fetch-model"]) == 0  # a good copy is there: kept, nothing downloaded
    assert capsys.readouterr().out.strip() == str(checkout / "models" / DEFAULT_MODEL)


def test_a_given_model_dir_is_the_only_place_looked_in(caplog, checkout, tmp_path):
    assert main(["info", "--model-dir", str(tmp_path / "elsewhere")]) == 2
    assert str(tmp_path / "elsewhere") in caplog.text
    assert str(checkout / "models") not in caplog.text


@pytest.mark.parametrize("command", [["info"], ["run", "--simulate", "--state-dir", "state"],
                                     ["eval", "--data", "data", "--shots", "1"]], ids=["info", "run", "eval"])
def test_missing_model_names_every_folder_looked_in(caplog, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)  # no ./models here
    assert main(command) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert str(tmp_path / "models") in errors[0]
    assert str(tmp_path / "xdg" / "teachbox" / "models") in errors[0]
    assert "fetch-model --model-dir" in errors[0]


# -- help --------------------------------------------------------------------------------------------


def test_run_help_lists_every_camera_spec_and_what_auto_means(capsys):
    from device.camera import SyntheticCamera

    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    options = text[text.index("options:"):]
    camera = options[options.index("--camera"):options.index("--state-dir")]
    for spec in ("auto", "picamera2", "opencv:N", "video:PATH", "folder:PATH", "synthetic:SCENE"):
        assert spec in camera, camera
    assert re.search(r"auto\b[^;]*the Pi camera if there is one", camera), camera
    assert "--simulate" in camera  # auto never means the Pi camera with --simulate
    for scene in SyntheticCamera().sources:
        assert scene in camera


def test_a_busy_port_is_said_before_the_model_loads(isolated, tmp_path, caplog):
    """Someone starting a second box learns about the port at once, not after the model (or its absence)."""
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        port = busy.getsockname()[1]
        with caplog.at_level(logging.ERROR):
            code = main(["run", "--model", str(tmp_path / "no-such-model.tflite"), "--host", "127.0.0.1",
                         "--port", str(port), "--state-dir", str(tmp_path / "state"), "--simulate"])
    finally:
        busy.close()
    assert code == 2
    text = caplog.text
    assert f"127.0.0.1:{port}" in text and "already running" in text
    assert "no-such-model" not in text  # the model was never looked at


def test_bench_json_gives_every_figure_it_promises(capsys, model_path, tmp_path):
    code = main(["bench", "--json", "--quick", "--model", str(model_path)])
    assert code == 0
    figures = json.loads(capsys.readouterr().out)
    for key in ("pipeline_ratio", "clock_ratio", "invoke_fps", "loop_fps", "web_load_ratio"):
        assert isinstance(figures[key], float) and figures[key] > 0, key
    assert figures["model"] == model_path.name
    assert set(figures["stages"]) == {"capture", "preprocess", "invoke", "classify"}
    assert all(stage["p99_ms"] >= stage["median_ms"] > 0 for stage in figures["stages"].values())
    assert "heads" not in figures and "rss_mb" not in figures  # --quick leaves them out


def test_bench_heads_cover_every_head_at_each_size():
    from device.benchmark import measure_heads

    table = measure_heads(16, sizes=(10, 100))
    assert set(table) == {"metric (default)", "nearest centroid", "k=3 neighbours"}
    for rows in table.values():
        assert set(rows) == {10, 100}
        assert all(row["predict_us"] > 0 and row["refit_ms"] >= 0 for row in rows.values())
