"""The TOML configuration: defaults, loading, typos, bad values, overrides, the default file."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from device.config import (
    Config,
    ConfigError,
    config_from_mapping,
    load_config,
    render_defaults,
)
from device.models import DEFAULT_MODEL

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]


def write(tmp_path, text, name="teachbox.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults():
    config = Config()
    assert config.camera.source == "auto"
    assert config.camera.timeout == 2.0
    assert config.camera.swap_rb is False
    assert config.model.path == ""
    assert config.model.dir == ""
    assert config.model.threads == 0
    assert config.head.classes == 4
    assert config.head.unknown_threshold == 0.0
    assert config.head.smoothing == 5
    assert config.head.temperature == 0.05
    assert config.storage.state_dir == ""
    assert config.storage.save_interval == 5.0
    assert config.log.level == "info"
    assert load_config(None) == config
    assert config_from_mapping({}) == config


def test_config_is_immutable():
    config = Config()
    with pytest.raises(AttributeError):
        config.head.classes = 8  # type: ignore[misc]


def test_load_config_reads_a_toml_file(tmp_path):
    path = write(tmp_path, """
[camera]
source = "opencv:0"
swap_rb = true

[head]
classes = 8
unknown_threshold = 0.6
smoothing = 1

[storage]
save_interval = 10   # an integer for a float key is fine
state_dir = "~/teachbox-state"

[log]
level = "debug"
""")
    config = load_config(path)
    assert config.camera.source == "opencv:0"
    assert config.camera.swap_rb is True
    assert config.camera.timeout == 2.0  # untouched keys keep their defaults
    assert config.head.classes == 8
    assert config.head.unknown_threshold == 0.6
    assert config.head.smoothing == 1
    assert config.head.temperature == 0.05
    assert config.storage.save_interval == 10.0
    assert isinstance(config.storage.save_interval, float)
    assert config.state_dir == Path("~/teachbox-state").expanduser()
    assert config.log.level == "debug"
    assert config.model == Config().model


def test_load_config_accepts_a_string_path(tmp_path):
    path = write(tmp_path, "[head]\nclasses = 3\n")
    assert load_config(str(path)).head.classes == 3


def test_empty_file_gives_defaults(tmp_path):
    assert load_config(write(tmp_path, "")) == Config()


@pytest.mark.parametrize("section, suggestion", [("haed", "head"), ("cammera", "camera"), ("storge", "storage")])
def test_unknown_section_is_refused_with_a_suggestion(tmp_path, section, suggestion):
    path = write(tmp_path, f"[{section}]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert repr(section) in message
    assert f"Did you mean {suggestion!r}" in message
    assert str(path) in message


def test_unknown_section_without_close_match_lists_known_ones():
    with pytest.raises(ConfigError) as info:
        config_from_mapping({"gpio": {"pin": 4}})
    message = str(info.value)
    assert "'gpio'" in message
    assert "Did you mean" not in message
    for known in ("camera", "model", "head", "storage", "log"):
        assert known in message


@pytest.mark.parametrize("section, key, suggestion", [
    ("head", "treshold", "unknown_threshold"),
    ("head", "unknown_treshold", "unknown_threshold"),
    ("head", "clases", "classes"),
    ("camera", "swap_br", "swap_rb"),
    ("storage", "save_intervall", "save_interval"),
    ("log", "levle", "level"),
])
def test_unknown_key_is_refused_with_a_suggestion(tmp_path, section, key, suggestion):
    path = write(tmp_path, f"[{section}]\n{key} = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"[{section}]" in message
    assert repr(key) in message
    assert f"Did you mean {suggestion!r}" in message
    assert str(path) in message


def test_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        config_from_mapping({"head": {"classes": "four"}})


@pytest.mark.parametrize("section, key, value", [
    ("head", "classes", "4"),
    ("head", "classes", True),
    ("head", "classes", 4.0),
    ("head", "smoothing", False),
    ("head", "unknown_threshold", "0.5"),
    ("head", "unknown_threshold", True),
    ("head", "temperature", [0.05]),
    ("camera", "source", 0),
    ("camera", "swap_rb", 1),
    ("camera", "swap_rb", "yes"),
    ("camera", "timeout", "2s"),
    ("model", "threads", 2.5),
    ("model", "path", 3),
    ("storage", "save_interval", True),
    ("log", "level", 10),
])
def test_wrong_types_are_refused_naming_section_key_and_value(section, key, value):
    with pytest.raises(ConfigError) as info:
        config_from_mapping({section: {key: value}})
    message = str(info.value)
    assert f"[{section}] {key}" in message
    assert repr(value) in message


@pytest.mark.parametrize("section, key, value", [
    ("head", "classes", 1),
    ("head", "classes", 65),
    ("head", "classes", -4),
    ("head", "smoothing", 0),
    ("head", "smoothing", 100),
    ("head", "unknown_threshold", -0.1),
    ("head", "unknown_threshold", 1.5),
    ("head", "temperature", 0.0),
    ("head", "temperature", 11.0),
    ("camera", "timeout", 0.0),
    ("camera", "timeout", 601),
    ("model", "threads", -1),
    ("model", "threads", 65),
    ("storage", "save_interval", 0.1),
    ("storage", "save_interval", 3601.0),
    ("log", "level", "verbose"),
    ("log", "level", "INFO"),
])
def test_out_of_range_values_are_refused_naming_section_key_and_value(section, key, value):
    with pytest.raises(ConfigError) as info:
        config_from_mapping({section: {key: value}})
    message = str(info.value)
    assert f"[{section}] {key}" in message
    assert repr(value) in message


@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
def test_non_finite_floats_are_refused(tmp_path, text):
    path = write(tmp_path, f"[camera]\ntimeout = {text}\n")
    with pytest.raises(ConfigError, match=r"\[camera\] timeout"):
        load_config(path)


def test_toml_value_errors_name_the_file(tmp_path):
    path = write(tmp_path, "[head]\nclasses = 100\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "[head] classes" in message
    assert "100" in message


@pytest.mark.parametrize("section, key, value", [
    ("head", "classes", 2),
    ("head", "classes", 64),
    ("head", "smoothing", 1),
    ("head", "smoothing", 99),
    ("head", "unknown_threshold", 0.0),
    ("head", "unknown_threshold", 1.0),
    ("model", "threads", 64),
    ("log", "level", "error"),
])
def test_values_at_the_limits_are_accepted(section, key, value):
    config = config_from_mapping({section: {key: value}})
    assert getattr(getattr(config, section), key) == value


def test_section_that_is_not_a_table_is_refused(tmp_path):
    path = write(tmp_path, "head = 4\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "[head]" in str(info.value)


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope" / "teachbox.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "does not exist" in str(info.value)


@pytest.mark.parametrize("text", [
    "[head\nclasses = 4\n",
    "[head]\nclasses = \n",
    "[head]\nclasses = 4\nclasses = 5\n",
    "[head]\nclasses == 4\n",
])
def test_invalid_toml_names_the_path(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "not valid TOML" in str(info.value)


def test_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "teachbox.toml"
    path.write_bytes('[camera]\nsource = "folder:/home/pi/Äpfel"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_folder_instead_of_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(tmp_path) in str(info.value)


# -- overrides (command-line options) -----------------------------------------------------------

def test_override_applies_and_keeps_the_rest():
    base = config_from_mapping({"head": {"classes": 6}, "camera": {"source": "synthetic"}})
    changed = base.override("camera", source="opencv:1", timeout=5)
    assert changed.camera.source == "opencv:1"
    assert changed.camera.timeout == 5.0
    assert changed.head.classes == 6
    assert base.camera.source == "synthetic"  # the original is unchanged


def test_override_ignores_none_values():
    base = config_from_mapping({"model": {"threads": 2}})
    assert base.override("model", threads=None, path=None) == base
    assert base.override("model", threads=None, path="/x.tflite").model.threads == 2


@pytest.mark.parametrize("section, values, words", [
    ("head", {"classes": 0}, ["[head] classes", "0"]),
    ("model", {"threads": "many"}, ["[model] threads", "'many'"]),
    ("log", {"level": "loud"}, ["[log] level", "'loud'"]),
    ("head", {"treshold": 0.4}, ["'treshold'", "unknown_threshold"]),
])
def test_override_validates(section, values, words):
    with pytest.raises(ConfigError) as info:
        Config().override(section, **values)
    for word in words:
        assert word in str(info.value)


# -- derived paths ------------------------------------------------------------------------------

def test_paths_default_to_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no ./models holding the model here
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path}/svc:/other")
    config = Config()
    assert config.state_dir == tmp_path / "svc" / "state"
    assert config.model_dir == tmp_path / "svc" / "models"
    assert config.model_path == tmp_path / "svc" / "models" / DEFAULT_MODEL

    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert Config().state_dir == tmp_path / "xdg" / "teachbox" / "state"


def test_configured_paths_win(tmp_path):
    config = config_from_mapping({
        "model": {"dir": str(tmp_path / "m"), "path": str(tmp_path / "x.tflite")},
        "storage": {"state_dir": str(tmp_path / "s")},
    })
    assert config.model_dir == tmp_path / "m"
    assert config.model_path == tmp_path / "x.tflite"
    assert config.state_dir == tmp_path / "s"
    only_dir = config_from_mapping({"model": {"dir": str(tmp_path / "m")}})
    assert only_dir.model_path == tmp_path / "m" / DEFAULT_MODEL


# -- the default config file --------------------------------------------------------------------

KEY_LINE = re.compile(r"^# ([a-z_]+) = (.+)$")


def uncomment(text):
    return "\n".join(
        line[2:] if KEY_LINE.match(line) else line for line in text.splitlines()
    )


def test_rendered_defaults_parse_back_to_the_default_config():
    text = render_defaults()
    uncommented = uncomment(text)
    assert uncommented != text
    data = tomllib.loads(uncommented)
    assert set(data) == {f.name for f in dataclasses.fields(Config)} - {"rules"}  # [[rules]]: none by default
    assert data["panel"]["class_buttons"] == [5, 6, 13, 19]
    assert data["head"]["classes"] == 4
    assert config_from_mapping(data) == Config()


def test_rendered_defaults_mention_every_key_once():
    text = render_defaults()
    keys = [m.group(1) for m in map(KEY_LINE.match, text.splitlines()) if m]
    expected = [f.name for section in dataclasses.fields(Config) if section.name != "rules"
                for f in dataclasses.fields(section.default_factory)]
    assert "unknown_threshold" in expected and "class_buttons" in expected
    assert keys == expected


def test_rendered_defaults_work_as_a_config_file_as_is(tmp_path):
    path = write(tmp_path, render_defaults())
    assert load_config(path) == Config()
    path = write(tmp_path, uncomment(render_defaults()), name="uncommented.toml")
    assert load_config(path) == Config()


def test_active_high_is_for_on_and_pulse_and_one_level_per_pin():
    with pytest.raises(ConfigError, match='active_high is for mode = "on" or "pulse", not \'servo\''):
        config_from_mapping({"rules": [{"name": "a", "when": "cat", "then": [
            {"gpio": 17, "mode": "servo", "angle": 0, "active_high": False}]}]})
    with pytest.raises(ConfigError, match='#2 "b": GPIO17 is active_high = true here but not in'):
        config_from_mapping({"rules": [
            {"name": "a", "when": "cat", "then": [{"gpio": 17, "mode": "on", "active_high": False}]},
            {"name": "b", "when": "dog", "then": [{"gpio": 17, "mode": "on"}]}]})


def test_a_rule_on_a_class_number_the_box_does_not_have_is_refused():
    with pytest.raises(ConfigError, match=r'#1 "a": when = 5: the box has 4 classes \(0 to 3'):
        config_from_mapping({"rules": [{"name": "a", "when": 5}]})
    assert config_from_mapping({"head": {"classes": 6}, "rules": [{"name": "a", "when": 5}]}).rules[0].when == 5
