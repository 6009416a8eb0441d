"""Configuration: one TOML file, every key known; typos and bad values are refused.

Like picamera2's configuration objects, unknown keys are an error (with a suggestion),
never silently ignored.  Command-line options override the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from .errors import ConfigError
from .head import MAX_CLASSES, MIN_CLASSES
from .models import DEFAULT_MODEL

import tomllib

LOCAL_MODEL_DIR = "models"  # where scripts/dev.sh puts the model: ./models in the checkout


def default_data_dir() -> Path:
    """systemd's ``$STATE_DIRECTORY`` when run as a service, else the user's data folder."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "teachbox"


def _doc(text: str, default: Any) -> Any:
    return field(default=default, metadata={"doc": text})


@dataclass(frozen=True)
class CameraConfig:
    source: str = _doc("auto (Pi camera if present, else synthetic), picamera2, opencv:N, video:PATH, "
                       "folder:PATH, synthetic or synthetic:SCENE (teachbox run --help says more)", "auto")
    timeout: float = _doc("seconds without a frame before the camera counts as offline", 2.0)
    swap_rb: bool = _doc("swap red and blue (for a camera whose colours look wrong)", False)


@dataclass(frozen=True)
class ModelConfig:
    path: str = _doc("model file; empty = the default model in model dir", "")
    dir: str = _doc("folder of the model, that teachbox fetch-model fills; empty = ./models if it holds the "
                    "model, else <data dir>/models", "")
    threads: int = _doc("interpreter threads; 0 = all cores", 0)


@dataclass(frozen=True)
class SourceConfig:
    kind: str = _doc("what the box looks at: picture (the whole frame: objects, scenes), hand (hand signs, "
                     "either hand), face (facial expressions) or pose (body poses); each keeps its own classes. "
                     "Empty = the one chosen on the phone, else picture", "")
    lite: bool = _doc("hand: the lite landmark model, about half the cost (a Pi Zero 2 W or Pi 3)", False)


@dataclass(frozen=True)
class HeadConfig:
    classes: int = _doc(f"number of classes (buttons), {MIN_CLASSES} to {MAX_CLASSES}", 4)
    unknown_threshold: float = _doc("cosine similarity under which the answer is 'unknown'; 0 = off", 0.0)
    smoothing: int = _doc("frames in the majority vote that steadies the answer; 1 = off", 5)
    temperature: float = _doc("softmax temperature turning similarities into confidences", 0.05)
    kind: str = _doc("the head that answers: centroid (cosine nearest centroid, at once), metric (nearest "
                     "centroid in a learned metric, with an unknown that calibrates itself; fitted after "
                     "teaching; the default) or knn (3 nearest neighbours, for comparison)", "metric")
    sensitivity: float = _doc("metric head: how readily it answers unknown, 0 (never) to 1 (readily)", 0.5)


@dataclass(frozen=True)
class StorageConfig:
    state_dir: str = _doc("folder of the learned state; empty = <data dir>/state", "")
    save_interval: float = _doc("a burst of examples is written when it ends; a long hold every this many "
                                "seconds", 5.0)
    max_examples_per_class: int = _doc("most examples a class keeps (then delete some in the gallery)", 2000)
    max_megabytes: int = _doc("most megabytes the examples library holds (about 10 KB an example)", 512)


@dataclass(frozen=True)
class TeachingConfig:
    rate: float = _doc("most examples per second taken while a class button is held", 4.0)
    duplicate_similarity: float = _doc("while held, skip frames at least this similar (cosine) to the last "
                                       "example; 1 = skip only identical frames", 0.98)


@dataclass(frozen=True)
class PanelConfig:
    gpio: str = _doc("auto (real pins on a Pi, simulated elsewhere), mock (simulated) or off", "auto")
    class_buttons: tuple = _doc("BCM pins of the class buttons (to ground, internal pull-up)", (5, 6, 13, 19))
    class_leds: tuple = _doc("BCM pins of the class LEDs (through a resistor)", (12, 16, 20, 21))
    function_button: int = _doc("BCM pin of the function button (undo, clear)", 26)
    status_led: int = _doc("BCM pin of the status LED; -1 = none", -1)
    led_active_high: bool = _doc("true: pin high lights the LED (LED to ground); false: LED to 3V3", True)
    pwm: bool = _doc("dim the answer LED by confidence (software PWM)", True)
    bounce_time: float = _doc("button debounce in seconds (real pins; simulated ones do not bounce); 0 = off",
                              0.02)
    hold_time: float = _doc("seconds before a pressed class button counts as held", 0.5)
    clear_all_time: float = _doc("seconds the function button is held to clear everything", 5.0)


@dataclass(frozen=True)
class WebConfig:
    enabled: bool = _doc("serve the phone page", True)
    host: str = _doc("address to listen on; 0.0.0.0 = every network interface", "0.0.0.0")
    port: int = _doc("port of the phone page (0 = any free port)", 8000)
    threads: int = _doc("web server threads (the page polls; each open request holds one)", 8)
    require_unlock: bool = _doc("changing anything from a browser needs unlocking (pairing or PIN) first", True)
    pin: str = _doc("PIN that unlocks the page (6 to 12 digits); empty = PIN unlock off, pair with the "
                    "function button instead", "")
    allowed_hosts: list = _doc("extra host names the page may be reached by (IP addresses, localhost and "
                               "this machine's name are always allowed)", ())


@dataclass(frozen=True)
class LogConfig:
    level: str = _doc("debug, info, warning or error", "info")


@dataclass(frozen=True)
class Config:
    camera: CameraConfig = field(default_factory=CameraConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    teaching: TeachingConfig = field(default_factory=TeachingConfig)
    panel: PanelConfig = field(default_factory=PanelConfig)
    web: WebConfig = field(default_factory=WebConfig)
    log: LogConfig = field(default_factory=LogConfig)

    # -- derived paths --------------------------------------------------------------
    @property
    def model_dirs(self) -> Tuple[Path, ...]:
        """Where the model is looked for: ``[model] dir`` if set, else ./models, then <data dir>/models."""
        if self.model.dir:
            return (Path(self.model.dir).expanduser(),)
        data = default_data_dir() / "models"
        try:
            local = Path.cwd() / LOCAL_MODEL_DIR
        except OSError:  # the working folder was removed
            return (data,)
        return (local, data) if local != data else (data,)  # a service's working folder is its data dir

    @property
    def model_dir(self) -> Path:
        """The first of :attr:`model_dirs` holding the default model, else the last (fetch-model fills it)."""
        folders = self.model_dirs
        return next((folder for folder in folders if (folder / DEFAULT_MODEL).is_file()), folders[-1])

    @property
    def model_path(self) -> Path:
        return Path(self.model.path).expanduser() if self.model.path else self.model_dir / DEFAULT_MODEL

    @property
    def state_dir(self) -> Path:
        return Path(self.storage.state_dir).expanduser() if self.storage.state_dir else default_data_dir() / "state"

    @property
    def threads(self) -> Optional[int]:
        """Interpreter threads for the Embedder (``None`` = all cores)."""
        return self.model.threads or None

    def override(self, section: str, **values: Any) -> "Config":
        """A copy with some keys of one section replaced (``None`` values are ignored), validated."""
        if section not in _SECTIONS:
            raise _unknown("section", section, _SECTIONS)
        values = {k: v for k, v in values.items() if v is not None}
        if not values:
            return self
        current = dataclasses.asdict(getattr(self, section))
        current.update(values)
        return dataclasses.replace(self, **{section: _build_section(section, current)})


_SECTIONS = {f.name: f.default_factory for f in fields(Config)}  # type: ignore[misc]
_CHOICES = {("log", "level"): ("debug", "info", "warning", "error"), ("panel", "gpio"): ("auto", "mock", "off"),
            ("head", "kind"): ("centroid", "metric", "knn"), ("source", "kind"): ("", "picture", "hand", "face", "pose")}
_RANGES = {
    ("camera", "timeout"): (0.1, 600.0),
    ("model", "threads"): (0, 64),
    ("head", "classes"): (MIN_CLASSES, MAX_CLASSES),
    ("head", "unknown_threshold"): (0.0, 1.0),
    ("head", "smoothing"): (1, 99),
    ("head", "temperature"): (1e-4, 10.0),
    ("head", "sensitivity"): (0.0, 1.0),
    ("storage", "save_interval"): (0.5, 3600.0),
    ("storage", "max_examples_per_class"): (1, 100_000),
    ("storage", "max_megabytes"): (1, 1 << 20),
    ("teaching", "rate"): (0.1, 100.0),
    ("teaching", "duplicate_similarity"): (0.0, 1.0),
    ("panel", "function_button"): (0, 27),
    ("panel", "status_led"): (-1, 27),
    ("panel", "bounce_time"): (0.0, 1.0),
    ("panel", "hold_time"): (0.05, 10.0),
    ("panel", "clear_all_time"): (1.5, 60.0),
    ("web", "port"): (0, 65535),
    ("web", "threads"): (2, 64),
}


def _unknown(kind: str, name: str, known) -> ConfigError:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown {kind} {name!r}.{hint} Known: {', '.join(known)}")


def _check_value(section: str, key: str, value: Any, expected: type) -> Any:
    where = f"[{section}] {key}"
    if expected is tuple:
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 27 for v in value):
            raise ConfigError(f"{where} = {value!r} must be a list of BCM pin numbers (0 to 27)")
        return tuple(value)
    if expected is list:
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, str) and v and len(v) <= 253 and all(c.isalnum() or c in ".-_" for c in v)
                for v in value):
            raise ConfigError(f"{where} = {value!r} must be a list of host names")
        return tuple(value)
    if (section, key) == ("web", "pin") and value and not (isinstance(value, str) and value.isascii()
                                                           and value.isdigit() and 6 <= len(value) <= 12):
        raise ConfigError(f"{where} must be 6 to 12 digits (or empty to turn PIN unlock off); a shorter PIN "
                          "could be guessed by anyone on the network")
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"{where} = {value!r} must be {expected.__name__}")
    if (section, key) in _CHOICES and value not in _CHOICES[(section, key)]:
        raise ConfigError(f"{where} = {value!r} must be one of {', '.join(_CHOICES[(section, key)])}")
    if (section, key) in _RANGES:
        low, high = _RANGES[(section, key)]
        if not low <= value <= high:
            raise ConfigError(f"{where} = {value!r} must be between {low:g} and {high:g}")
    return value


def _build_section(section: str, values: Mapping[str, Any]):
    factory = _SECTIONS[section]
    known = {f.name: f for f in fields(factory)}
    checked: Dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise _unknown(f"key in [{section}]", key, known)
        expected = {"str": str, "float": float, "int": int, "bool": bool, "tuple": tuple, "list": list}[str(known[key].type)]
        checked[key] = _check_value(section, key, value, expected)
    return factory(**checked)


def config_from_mapping(data: Mapping[str, Any]) -> Config:
    sections = {}
    for section, values in data.items():
        if section not in _SECTIONS:
            raise _unknown("section", section, _SECTIONS)
        if not isinstance(values, Mapping):
            raise ConfigError(f"[{section}] must be a table of keys, not {values!r}")
        sections[section] = _build_section(section, values)
    return Config(**sections)


def load_config(path: Optional[Path]) -> Config:
    """The configuration in ``path`` (``None``: all defaults)."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML (UTF-8): {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    try:
        return config_from_mapping(data)
    except ConfigError as exc:
        raise ConfigError(f"config file {str(path)!r}: {exc}") from None


def render_defaults() -> str:
    """A config file with every key commented out at its default, with its meaning."""
    lines = ["# teachbox configuration. Every key is optional; the values shown are the defaults.", ""]
    for section, factory in _SECTIONS.items():
        lines.append(f"[{section}]")
        for f in fields(factory):
            lines.append(f"# {f.metadata['doc']}")
            lines.append(f"# {f.name} = {_toml_value(f.default)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
