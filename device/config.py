"""Configuration: one TOML file, every key known; typos and bad values are refused.

Like picamera2's configuration objects, unknown keys are an error (with a suggestion),
never silently ignored.  Command-line options override the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import socket
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from .errors import ConfigError
from .head import MAX_CLASSES, MIN_CLASSES
from .models import DEFAULT_MODEL
from .rules import MODES, SPECIAL_ANSWERS, Action, Rule

import tomllib

LOCAL_MODEL_DIR = "models"  # where scripts/dev.sh puts the model: ./models in the checkout


def default_data_dir() -> Path:
    """systemd's ``$STATE_DIRECTORY`` when run as a service, else the user's data folder."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "teachbox"


def host_box_name() -> str:
    """The machine's host name, to the first dot (``teachbox`` when it has none)."""
    return socket.gethostname().split(".")[0].strip() or "teachbox"


def box_id(name: str) -> str:
    """``"Class 3 — Cat Flap"`` -> ``"class-3-cat-flap"``: the letters and digits of a name, ``-`` between words."""
    ident = re.sub(r"[^a-z0-9]+", "-", name.casefold().encode("ascii", "ignore").decode()).strip("-")
    return ident[:48].strip("-") or "teachbox"


def _doc(text: str, default: Any, *, secret: bool = False) -> Any:
    """A key with its meaning; a ``secret`` one is left out of the repr (logs, tracebacks)."""
    return field(default=default, repr=not secret, metadata={"doc": text, "secret": secret})


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
class BoxConfig:
    name: str = _doc("this box's name, for telling several apart: the page's title, the MQTT ids and topics, "
                     "<name>.local on the network; empty = from the machine's host name", "")


@dataclass(frozen=True)
class EventsConfig:
    log_answers: bool = _doc("the event log (and the page's chart) also keeps when each answer starts and ends, "
                             "not only the rules' events", True)
    confidence: float = _doc("an answer's start and end (MQTT, webhook, log): at least this confidence ...", 0.6)
    hold: float = _doc("... shown for this many seconds starts it ...", 0.5)
    until: float = _doc("... and something else for this many seconds ends it", 1.0)


@dataclass(frozen=True)
class MqttConfig:
    host: str = _doc("the MQTT broker (e.g. Home Assistant's Mosquitto add-on); empty = MQTT off", "")
    port: int = _doc("the broker's port (1883; 8883 with tls)", 1883)
    username: str = _doc("user name at the broker; empty = none", "")
    password: str = _doc("password at the broker (keep the config file readable by root and teachbox only)", "",
                         secret=True)
    tls: bool = _doc("connect with TLS, checking the broker's certificate against the system's CAs", False)
    base_topic: str = _doc("topics are <base_topic>/<box id>/state, /event, /availability, /command", "teachbox")
    discovery: bool = _doc("announce the box to Home Assistant (MQTT discovery)", True)
    discovery_prefix: str = _doc("Home Assistant's discovery prefix", "homeassistant")
    legacy_discovery: bool = _doc("one discovery topic per entity (Home Assistant before 2024.12) instead of one "
                                  "for the device", False)
    commands: bool = _doc("obey commands on <base_topic>/<box id>/command (teach, stop, undo, source); off by "
                          "default: anyone who may publish there could teach the box", False)


@dataclass(frozen=True)
class WebhookConfig:
    url: str = _doc("POST every event (JSON) to this http:// or https:// address; empty = off", "")
    secret: str = _doc("the key of the HMAC-SHA256 signature in the X-Teachbox-Signature header; empty = unsigned",
                       "", secret=True)
    timeout: float = _doc("seconds to wait for the receiver", 5.0)
    retries: int = _doc("tries again this many times (waiting 1, 2, 4 ... s) when it fails", 3)


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
    box: BoxConfig = field(default_factory=BoxConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    log: LogConfig = field(default_factory=LogConfig)
    rules: Tuple[Rule, ...] = ()  # the [[rules]] tables (device.rules), checked against [panel]'s pins

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
    def box_name(self) -> str:
        """``[box] name``, else the machine's host name (``teachbox`` if it has none)."""
        return self.box.name or host_box_name()

    @property
    def box_id(self) -> str:
        """The box's name as an id (MQTT topics and ids): lower case letters, digits and ``-``."""
        return box_id(self.box_name)

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
        changed = dataclasses.replace(self, **{section: _build_section(section, current)})
        _check_rule_pins(changed.rules, changed.panel)
        _check_rule_classes(changed.rules, changed.head.classes)
        return changed


_SECTIONS = {f.name: f.default_factory for f in fields(Config) if f.name != "rules"}  # type: ignore[misc]
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
    ("events", "confidence"): (0.0, 1.0),
    ("events", "hold"): (0.0, 3600.0),
    ("events", "until"): (0.0, 3600.0),
    ("mqtt", "port"): (1, 65535),
    ("webhook", "timeout"): (0.5, 120.0),
    ("webhook", "retries"): (0, 10),
}


def _box_name_problem(value: str) -> Optional[str]:
    if len(value) > 40 or (value and not value.strip()) or any(ord(c) < 32 or c in '<>"\\/`' for c in value):
        return "must be up to 40 letters, digits, spaces or -_.' (it names the box on the page and the network)"
    if value and box_id(value) == "teachbox" and not any(c.isascii() and c.isalnum() for c in value):
        return "needs at least one letter or digit of a-z, 0-9 (for the box's id on the network)"
    return None


def _topic_problem(value: str) -> Optional[str]:
    if not value or value.startswith("/") or value.endswith("/") or any(c in value for c in "+#\0") \
            or len(value) > 100 or any(ord(c) < 32 for c in value):
        return "must be an MQTT topic without + # or a leading or trailing / (e.g. \"teachbox\")"
    return None


def _host_problem(value: str) -> Optional[str]:
    if value and (len(value) > 253 or not all(c.isalnum() or c in ".-_:[]" for c in value)):
        return "must be a host name or address (e.g. \"homeassistant.local\" or \"192.168.1.10\")"
    return None


def _url_problem(value: str) -> Optional[str]:
    if not value:
        return None
    from urllib.parse import urlsplit
    try:
        parts = urlsplit(value)
        parts.port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or any(
            ord(c) < 33 for c in value):
        return "must be an http:// or https:// address (e.g. \"http://192.168.1.10:1880/teachbox\")"
    return None


_TEXT_CHECKS = {("box", "name"): _box_name_problem, ("mqtt", "base_topic"): _topic_problem,
                ("mqtt", "discovery_prefix"): _topic_problem, ("mqtt", "host"): _host_problem,
                ("webhook", "url"): _url_problem}


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
    if isinstance(value, str) and (section, key) in _TEXT_CHECKS:
        problem = _TEXT_CHECKS[(section, key)](value)
        if problem:
            raise ConfigError(f"{where} = {value!r} {problem}")
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
    sections: Dict[str, Any] = {}
    for section, values in data.items():
        if section == "rules":
            sections["rules"] = _build_rules(values)
            continue
        if section not in _SECTIONS:
            raise _unknown("section", section, [*_SECTIONS, "rules"])
        if not isinstance(values, Mapping):
            raise ConfigError(f"[{section}] must be a table of keys, not {values!r}")
        sections[section] = _build_section(section, values)
    config = Config(**sections)
    _check_rule_pins(config.rules, config.panel)
    _check_rule_classes(config.rules, config.head.classes)
    return config


# -- [[rules]] (device.rules) ------------------------------------------------------------------

_RULE_KEYS = {"name": None, "when": None, "confidence": (0.0, 1.0), "hold": (0.0, 3600.0),
              "cooldown": (0.0, 86400.0), "until": (0.0, 3600.0), "then": None, "ended": None,
              "sound": None}
_ACTION_KEYS = {"gpio": None, "mode": None, "ms": (1, 600_000), "angle": (-90.0, 90.0), "value": (0.0, 1.0),
                "active_high": None}
_MODE_KEYS = {"on": (), "pulse": ("ms",), "servo": ("angle",), "pwm": ("value",)}
_FREE_GPIO = (2, 27)  # GPIO0/1 are the HAT EEPROM's ID_SD/ID_SC


def _number(where: str, value: Any, bounds: Tuple[float, float], integer: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int,) if integer else (int, float)):
        raise ConfigError(f"{where} = {value!r} must be {'an integer' if integer else 'a number'}")
    low, high = bounds
    if not low <= value <= high:
        raise ConfigError(f"{where} = {value!r} must be between {low:g} and {high:g}")
    return value if integer else float(value)


def _build_action(where: str, values: Any) -> Action:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where} must be a table (gpio = ..., mode = ...), not {values!r}")
    for key in values:
        if key not in _ACTION_KEYS:
            if key == "pin":  # too unlike "gpio" for difflib
                raise ConfigError(f"{where} unknown key 'pin'. Did you mean 'gpio' (the BCM pin)?")
            raise ConfigError(f"{where} {_unknown('key', key, _ACTION_KEYS)}")
    for key in ("gpio", "mode"):
        if key not in values:
            raise ConfigError(f"{where} needs {key} = ...")
    mode = values["mode"]
    if mode not in MODES:
        raise ConfigError(f"{where} mode = {mode!r} must be one of {', '.join(MODES)}")
    gpio = _number(f"{where} gpio", values["gpio"], (0, 27), integer=True)
    if not _FREE_GPIO[0] <= gpio:
        raise ConfigError(f"{where} gpio = {gpio}: GPIO{gpio} is the HAT EEPROM's, use one of GPIO2 to GPIO27")
    checked: Dict[str, Any] = {"gpio": gpio, "mode": mode}
    if "active_high" in values:
        if mode not in ("on", "pulse"):
            raise ConfigError(f"{where} active_high is for mode = \"on\" or \"pulse\", not {mode!r}")
        if not isinstance(values["active_high"], bool):
            raise ConfigError(f"{where} active_high = {values['active_high']!r} must be true or false")
        checked["active_high"] = values["active_high"]
    for key in ("ms", "angle", "value"):
        if key in values:
            if key not in _MODE_KEYS[mode]:
                owner = next(m for m, keys in _MODE_KEYS.items() if key in keys)
                raise ConfigError(f"{where} {key} is for mode = {owner!r}, not {mode!r}")
            checked[key] = _number(f"{where} {key}", values[key], _ACTION_KEYS[key], integer=key == "ms")
    for key in _MODE_KEYS[mode]:
        if key not in checked and key != "ms":
            raise ConfigError(f"{where} mode = {mode!r} needs {key} = ...")
    return Action(**checked)


def _rule_where(index: int, name: str) -> str:
    return f'[[rules]] #{index} "{name}":'


def _build_rule(index: int, values: Any) -> Rule:
    if not isinstance(values, Mapping):
        raise ConfigError(f"[[rules]] #{index} must be a table, not {values!r}")
    name = values.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"[[rules]] #{index} needs name = \"...\" (a text naming the rule)")
    where = _rule_where(index, name)
    for key in values:
        if key not in _RULE_KEYS:
            raise ConfigError(f"{where} {_unknown('key', key, _RULE_KEYS)}")
    if "when" not in values:
        raise ConfigError(f"{where} needs when = a class name, a class number, \"unknown\" or \"absent\"")
    when = values["when"]
    if isinstance(when, str):
        if not when.strip():
            raise ConfigError(f"{where} when is empty: give a class name, \"unknown\" or \"absent\"")
        if when.strip().casefold() == "nothing-learned":
            raise ConfigError(f"{where} when = {when!r} cannot be a rule (the box is only empty before teaching); "
                              "did you mean \"absent\" (nothing in view)?")
    elif isinstance(when, int) and not isinstance(when, bool):
        _number(f"{where} when", when, (0, MAX_CLASSES - 1), integer=True)
    else:
        raise ConfigError(f"{where} when = {when!r} must be a class name or number, \"unknown\" or \"absent\"")
    checked: Dict[str, Any] = {"name": name, "when": when}
    if "confidence" in values and isinstance(when, str) and when.strip().casefold() in SPECIAL_ANSWERS:
        raise ConfigError(f"{where} confidence is for a class; when = {when!r} has none (take it out)")
    for key in ("confidence", "hold", "cooldown", "until"):
        if key in values:
            checked[key] = _number(f"{where} {key}", values[key], _RULE_KEYS[key])
    if "sound" in values:
        sound = values["sound"]
        if not isinstance(sound, str) or any(ord(c) < 32 for c in sound) or len(sound) > 4096:
            raise ConfigError(f"{where} sound = {sound!r} must be the path of a WAV file (or \"\" for none)")
        checked["sound"] = sound
    for key in ("then", "ended"):
        actions = values.get(key, [])
        if not isinstance(actions, list):
            raise ConfigError(f"{where} {key} must be [[rules.{key}]] tables, not {actions!r}")
        checked[key] = tuple(_build_action(f"{where} [[rules.{key}]] #{i}", action)
                             for i, action in enumerate(actions, 1))
    return Rule(**checked)


def _build_rules(values: Any) -> Tuple[Rule, ...]:
    if not isinstance(values, list):
        raise ConfigError(f"rules must be [[rules]] tables, not {values!r}")
    rules = tuple(_build_rule(i, rule) for i, rule in enumerate(values, 1))
    seen: Dict[str, int] = {}
    modes: Dict[int, Tuple[str, str]] = {}
    levels: Dict[int, Tuple[bool, str]] = {}
    for i, rule in enumerate(rules, 1):
        where = _rule_where(i, rule.name)
        if rule.name in seen:
            raise ConfigError(f"{where} the name is taken by [[rules]] #{seen[rule.name]}; give every rule its own")
        seen[rule.name] = i
        for action in (*rule.then, *rule.ended):
            mode, by = modes.setdefault(action.gpio, (action.mode, where.rstrip(":")))
            if mode != action.mode:
                raise ConfigError(f"{where} GPIO{action.gpio} is mode = {action.mode!r} here but {mode!r} in "
                                  f"{by}; a pin has one mode")
            high, high_by = levels.setdefault(action.gpio, (action.active_high, where.rstrip(":")))
            if high != action.active_high:
                raise ConfigError(f"{where} GPIO{action.gpio} is active_high = {str(action.active_high).lower()} "
                                  f"here but not in {high_by}; a pin is active high or low for every rule")
    return rules


def _check_rule_pins(rules: Tuple[Rule, ...], panel: "PanelConfig") -> None:
    if not rules:
        return
    uses = {f"class_buttons[{i}]": pin for i, pin in enumerate(panel.class_buttons)}
    uses.update({f"class_leds[{i}]": pin for i, pin in enumerate(panel.class_leds)})
    uses["function_button"] = panel.function_button
    if panel.status_led >= 0:
        uses["status_led"] = panel.status_led
    by_pin = {pin: use for use, pin in uses.items()}
    for i, rule in enumerate(rules, 1):
        for action in (*rule.then, *rule.ended):
            if action.gpio in by_pin:
                raise ConfigError(f"{_rule_where(i, rule.name)} GPIO{action.gpio} is the panel's "
                                  f"{by_pin[action.gpio]} ([panel]); use a free pin")


def rules_from_list(values: Any, panel: "PanelConfig", classes: int = MAX_CLASSES) -> Tuple[Rule, ...]:
    """``[[rules]]`` given as a list of tables (the page, ``rules.json``), checked as in the config file."""
    rules = _build_rules(values)
    _check_rule_pins(rules, panel)
    _check_rule_classes(rules, classes)
    return rules


def _check_rule_classes(rules: Tuple[Rule, ...], classes: int) -> None:
    for i, rule in enumerate(rules, 1):
        if isinstance(rule.when, int) and rule.when >= classes:
            raise ConfigError(f"{_rule_where(i, rule.name)} when = {rule.when}: the box has {classes} classes "
                              f"(0 to {classes - 1}, [head] classes)")


def rule_to_mapping(rule: Rule) -> Dict[str, Any]:
    """A rule as its ``[[rules]]`` table (only the keys that matter): ``rules_from_list`` reads it back."""
    table: Dict[str, Any] = {"name": rule.name, "when": rule.when}
    for key in ("confidence", "hold", "cooldown", "until"):
        if rule.special is None or key != "confidence":
            table[key] = getattr(rule, key)
    if rule.sound:
        table["sound"] = rule.sound
    for key in ("then", "ended"):
        actions = []
        for action in getattr(rule, key):
            item: Dict[str, Any] = {"gpio": action.gpio, "mode": action.mode}
            item.update({k: getattr(action, k) for k in _MODE_KEYS[action.mode]})
            if not action.active_high:
                item["active_high"] = False
            actions.append(item)
        table[key] = actions
    return table


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
