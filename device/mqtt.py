"""MQTT: the answer, the events and Home Assistant discovery, published to a broker (paho-mqtt).

Topics (``base`` = ``[mqtt] base_topic``, ``id`` = the box's id from ``[box] name``):

* ``<base>/<id>/availability`` — ``online`` / ``offline``, retained; ``offline`` is also the
  last will, so the broker says it when the box dies or loses power;
* ``<base>/<id>/state`` — retained JSON of the shown answer (:func:`state_payload`), sent when the
  answer or class changes or the confidence moves by 0.05, at most 5 times a second (the newest
  always goes out), and again on every (re)connect;
* ``<base>/<id>/event`` — JSON of each start and end (:func:`event_payload`), not retained;
* ``<base>/<id>/command`` — commands, only with ``[mqtt] commands = true``; replies on
  ``<base>/<id>/command/result``;
* ``<prefix>/device/<id>/config`` — Home Assistant's device discovery (:func:`discovery_config`),
  retained, re-sent when Home Assistant's birth message (``<prefix>/status`` = ``online``) comes and
  when the taught classes change; a class no longer taught is removed (its component sent once
  as just its platform).  ``legacy_discovery``: one topic per entity instead, removal by an empty
  retained message.

Threads: :meth:`MqttOutput.update` (every frame) and :meth:`~MqttOutput.apply` (every event) only
compare and put on a bounded queue; one worker thread publishes; paho's own thread does the
network, reconnecting with backoff (1 to 60 s).  A broker that is down, slow or refuses us never
slows the loop: the queue drops its oldest messages (counted) and the state is re-sent on reconnect.
"""

from __future__ import annotations

import collections
import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Callable, Deque, Dict, List, Optional, Tuple

from . import __version__
from .events import event_json, iso_utc

log = logging.getLogger(__name__)

QUEUE_SIZE = 256
STATE_INTERVAL = 0.2  # seconds: at most 5 states a second
CONFIDENCE_STEP = 0.05
CLASS_CHECK = 1.0  # seconds between looks at the taught classes (names, counts)
MAX_COMMAND_BYTES = 4096
OFFLINE = "offline"


@dataclass(frozen=True)
class MqttStatus:
    connected: bool
    broker: str
    error: Optional[str]
    sent: int
    dropped: int


@dataclass(frozen=True)
class Topics:
    base: str  # <base_topic>/<id>
    prefix: str  # Home Assistant's discovery prefix
    box_id: str

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def event(self) -> str:
        return f"{self.base}/event"

    @property
    def command(self) -> str:
        return f"{self.base}/command"

    @property
    def result(self) -> str:
        return f"{self.base}/command/result"

    @property
    def device_config(self) -> str:
        return f"{self.prefix}/device/{self.box_id}/config"

    @property
    def birth(self) -> str:
        return f"{self.prefix}/status"


# -- payloads (pure) ---------------------------------------------------------------------------

def state_payload(answer: str, class_id: Optional[int], confidence: float, source: str, box: str,
                  unix: float) -> Dict[str, object]:
    """The state topic's JSON: what the box shows now."""
    return {"answer": answer, "class_id": class_id, "confidence": round(float(confidence), 4), "source": source,
            "time": iso_utc(unix), "unix": round(unix, 3), "box": box}


def event_payload(event, box: str, source: str) -> Dict[str, object]:
    """The event topic's JSON: :func:`device.events.event_json` with ``event_type`` (for Home Assistant)."""
    payload = event_json(event)
    payload.update({"event_type": payload["kind"], "box": box, "source": source})
    return payload


def _unique(topics: Topics, key: str) -> str:
    return f"teachbox_{topics.box_id}_{key}"


def components(topics: Topics, classes: Dict[int, str]) -> Dict[str, Dict[str, object]]:
    """Home Assistant entities of the box: answer, confidence, event, one binary sensor per taught class."""
    found: Dict[str, Dict[str, object]] = {
        "answer": {"p": "sensor", "uniq_id": _unique(topics, "answer"), "name": "Answer", "icon": "mdi:eye",
                   "stat_t": topics.state, "val_tpl": "{{ value_json.answer }}", "json_attr_t": topics.state},
        "confidence": {"p": "sensor", "uniq_id": _unique(topics, "confidence"), "name": "Confidence",
                       "unit_of_meas": "%", "stat_t": topics.state, "stat_cla": "measurement",
                       "val_tpl": "{{ (value_json.confidence * 100) | round(0) }}"},
        "event": {"p": "event", "uniq_id": _unique(topics, "event"), "name": "Event", "stat_t": topics.event,
                  "evt_typ": ["start", "end"]},
    }
    for class_id, name in sorted(classes.items()):
        found[f"class_{class_id}"] = {
            "p": "binary_sensor", "uniq_id": _unique(topics, f"class_{class_id}"), "name": name,
            "stat_t": topics.state, "val_tpl": f"{{{{ 'ON' if value_json.class_id == {class_id} else 'OFF' }}}}"}
    return found


def device_block(topics: Topics, box: str) -> Dict[str, object]:
    return {"ids": [f"teachbox_{topics.box_id}"], "name": box, "mf": "teachbox", "mdl": "teachbox",
            "sw": __version__}


def discovery_config(topics: Topics, box: str, classes: Dict[int, str],
                     removed: Tuple[int, ...] = ()) -> Dict[str, object]:
    """Home Assistant's device discovery payload; ``removed`` classes appear once as just their platform."""
    cmps = components(topics, classes)
    for class_id in removed:
        cmps[f"class_{class_id}"] = {"p": "binary_sensor"}
    return {"dev": device_block(topics, box), "o": {"name": "teachbox", "sw": __version__},
            "avty_t": topics.availability, "qos": 1, "cmps": cmps}


def legacy_configs(topics: Topics, box: str, classes: Dict[int, str],
                   removed: Tuple[int, ...] = ()) -> List[Tuple[str, Optional[Dict[str, object]]]]:
    """``(topic, payload)`` per entity for per-entity discovery; ``None``: remove (an empty retained message)."""
    out: List[Tuple[str, Optional[Dict[str, object]]]] = []
    for key, component in components(topics, classes).items():
        payload = {k: v for k, v in component.items() if k != "p"}
        payload.update({"dev": device_block(topics, box), "avty_t": topics.availability, "qos": 1})
        out.append((f"{topics.prefix}/{component['p']}/{topics.box_id}/{key}/config", payload))
    for class_id in removed:
        out.append((f"{topics.prefix}/binary_sensor/{topics.box_id}/class_{class_id}/config", None))
    return out


# -- the output ---------------------------------------------------------------------------------

class MqttOutput:
    """Loop observer and events consumer publishing to ``[mqtt]``'s broker.

    :param settings: ``Config.mqtt``.
    :param box_name: ``[box] name``; ``box_id``: its id (topics, client id, discovery).
    :param box: the :class:`~device.box.Box` (public API only): class names and counts, the source, commands.
    :param client_factory: makes the paho client (tests pass their own); ``wall``: unix seconds.
    """

    kind = "mqtt"

    def __init__(self, settings, *, box_name: str, box_id: str, box, client_factory=None,
                 wall: Callable[[], float] = time.time, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.box_name, self.box = box_name, box
        self.topics = Topics(f"{settings.base_topic}/{box_id}", settings.discovery_prefix, box_id)
        self._wall, self._clock = wall, clock
        self._queue: Deque[Tuple[str, bytes, bool]] = collections.deque()
        self._wake = threading.Condition()
        self._connected = False
        self._stopping = False
        self._error: Optional[str] = None
        self._warned = False
        self._sent = self._dropped = 0
        self._pending_state: Optional[tuple] = None  # the newest state not yet sent (coalesced)
        self._last = (None, None, -1.0)  # answer, class id, confidence last queued
        self._last_state_at = -1e9
        self._announced: Dict[int, str] = {}
        self._announce_now = True
        self._commands: Deque[bytes] = collections.deque(maxlen=32)  # a flood drops the oldest
        self.client = (client_factory or self._make_client)()
        self._worker = threading.Thread(target=self._run, name="teachbox-mqtt", daemon=True)
        self._worker.start()
        self.client.connect_async(settings.host, settings.port, keepalive=30)
        self.client.loop_start()

    def __repr__(self) -> str:
        return f"<MqttOutput {self.settings.host}:{self.settings.port} connected={self._connected}>"

    def _make_client(self):
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"teachbox-{self.topics.box_id}")
        client.will_set(self.topics.availability, OFFLINE, qos=1, retain=True)
        if self.settings.username:
            client.username_pw_set(self.settings.username, self.settings.password or None)
        if self.settings.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(1, 60)
        client.max_queued_messages_set(QUEUE_SIZE)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    # -- the frame loop's side: compare, queue, never wait ----------------------------------
    def update(self, result) -> None:
        if result.frame is None:
            answer, class_id, confidence = OFFLINE, None, 0.0
        elif isinstance(result.answer, int):
            answer, class_id, confidence = result.answer, result.answer, result.confidence
        else:
            answer, class_id, confidence = str(result.answer), None, result.confidence
        last_answer, last_id, last_confidence = self._last
        if answer == last_answer and class_id == last_id and abs(confidence - last_confidence) < CONFIDENCE_STEP:
            return
        now = self._clock()
        self._last = (answer, class_id, confidence)
        with self._wake:  # the worker names the class and writes the JSON, not the frame loop
            self._pending_state = (answer, class_id, confidence, self._wall())
            if now - self._last_state_at >= STATE_INTERVAL:
                self._last_state_at = now
                self._wake.notify()

    def apply(self, event) -> None:
        self._put(self.topics.event, _dump(event_payload(event, self.box_name, self._source())), False)

    def _state_json(self, answer, class_id: Optional[int], confidence: float, unix: float) -> bytes:
        name = self._name(class_id) if class_id is not None else answer
        return _dump(state_payload(name, class_id, confidence, self._source(), self.box_name, unix))

    def _name(self, class_id: int) -> str:
        names = self.box.class_names()
        return names[class_id] if 0 <= class_id < len(names) else str(class_id)

    def _source(self) -> str:
        try:
            return self.box.source
        except Exception:
            return ""

    def _put(self, topic: str, payload: bytes, retain: bool) -> None:
        with self._wake:
            if self._stopping:
                return
            if len(self._queue) >= QUEUE_SIZE:
                self._queue.popleft()
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 1000 == 0:
                    log.warning("MQTT: %d messages dropped so far (the broker %s is not keeping up)",
                                self._dropped, self._broker)
            self._queue.append((topic, payload, retain))
            self._wake.notify()

    @property
    def _broker(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    # -- the worker: publishes, watches the classes -------------------------------------------
    def _run(self) -> None:
        next_check = 0.0
        while True:
            with self._wake:
                if not self._stopping:
                    self._wake.wait(timeout=STATE_INTERVAL)
                stopping = self._stopping
                connected = self._connected
                work = list(self._queue) if connected else []
                if connected:
                    self._queue.clear()
                state = self._pending_state if connected else None
                if state is not None:
                    self._pending_state = None
            for topic, payload, retain in work:
                self._publish(topic, payload, retain)
            if state is not None:
                self._publish(self.topics.state, self._state_json(*state), True)
            if connected and self.settings.discovery and (self._announce_now or self._clock() >= next_check):
                next_check = self._clock() + CLASS_CHECK
                self._announce()
            if connected:
                self._run_commands()
            if stopping:
                return

    def _publish(self, topic: str, payload, retain: bool) -> None:
        try:
            info = self.client.publish(topic, payload, qos=1, retain=retain)
            if info.rc == 0:
                self._sent += 1
        except Exception as exc:  # never out of the worker
            log.warning("MQTT: publishing to %s failed: %s", topic, exc)

    def _taught(self) -> Dict[int, str]:
        try:
            return {info.id: info.name for info in self.box.snapshot().loop.classes if info.examples > 0}
        except Exception:
            log.debug("MQTT: the classes could not be read", exc_info=True)
            return dict(self._announced)

    def _announce(self) -> None:
        classes = self._taught()
        if classes == self._announced and not self._announce_now:
            return
        removed = tuple(sorted(set(self._announced) - set(classes)))
        self._announce_now = False
        if self.settings.legacy_discovery:
            for topic, payload in legacy_configs(self.topics, self.box_name, classes, removed):
                self._publish(topic, b"" if payload is None else _dump(payload), True)
        else:
            self._publish(self.topics.device_config, _dump(discovery_config(self.topics, self.box_name, classes,
                                                                            removed)), True)
        self._announced = classes

    # -- paho's thread ---------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            self._failed(f"the broker refused us: {reason_code}")
            return
        log.info("MQTT: connected to %s as %s", self._broker, self.topics.base)
        client.publish(self.topics.availability, "online", qos=1, retain=True)
        if self.settings.discovery:
            client.subscribe(self.topics.birth, qos=1)
        if self.settings.commands:
            client.subscribe(self.topics.command, qos=1)
        with self._wake:
            self._connected, self._error, self._warned = True, None, False
            self._announce_now = True
            self._last = (None, None, -1.0)  # the next frame re-sends the state
            self._wake.notify()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        with self._wake:
            self._connected = False
        if not self._stopping:
            self._failed(f"disconnected ({reason_code}); reconnecting")

    def _failed(self, message: str) -> None:
        self._error = message
        if not self._warned:
            self._warned = True
            log.warning("MQTT: %s: %s (trying again, up to every 60 s)", self._broker, message)

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == self.topics.birth:
            if message.payload == b"online":
                with self._wake:
                    self._announce_now = True
                    self._wake.notify()
            return
        if message.topic == self.topics.command and self.settings.commands:
            with self._wake:
                self._commands.append(bytes(message.payload[:MAX_COMMAND_BYTES + 1]))
                self._wake.notify()

    # -- commands (the worker's thread: they may take a while) ------------------------------------
    def _run_commands(self) -> None:
        while True:
            with self._wake:
                if not self._commands:
                    return
                raw = self._commands.popleft()
            reply = run_command(self.box, raw)
            self._publish(self.topics.result, _dump(reply), False)

    def status(self) -> MqttStatus:
        return MqttStatus(self._connected, self._broker, self._error, self._sent, self._dropped)

    def close(self, timeout: float = 3.0) -> None:
        """Send what is queued, say ``offline``, disconnect."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self._worker.join(timeout)
        try:
            if self._connected:
                self.client.publish(self.topics.availability, OFFLINE, qos=1, retain=True).wait_for_publish(timeout)
            self.client.disconnect()
        except Exception as exc:
            log.debug("MQTT: closing: %s", exc)
        self.client.loop_stop()


def _dump(payload) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


COMMANDS = ("teach", "stop", "undo", "source")


def run_command(box, raw: bytes) -> Dict[str, object]:
    """Do one command message (``{"command": "teach", "class": 0, "seconds": 2}`` ...); the reply, never raises."""
    def reply(ok: bool, message: str, command: object = None) -> Dict[str, object]:
        return {"ok": ok, "command": command if isinstance(command, str) else None, "message": message}

    if len(raw) > MAX_COMMAND_BYTES:
        return reply(False, f"a command is at most {MAX_COMMAND_BYTES} bytes")
    try:
        message = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return reply(False, 'a command is JSON, e.g. {"command": "teach", "class": 0, "seconds": 2}')
    if not isinstance(message, dict) or message.get("command") not in COMMANDS:
        return reply(False, f"command is one of {', '.join(COMMANDS)}",
                     message.get("command") if isinstance(message, dict) else None)
    command = message["command"]
    try:
        if command == "teach":
            class_id = _class_of(box, message.get("class"))
            seconds = message.get("seconds", 2)
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0.5 <= seconds <= 30:
                return reply(False, "seconds is a number from 0.5 to 30", command)
            box.start_teaching(class_id, lease=float(seconds))
            return reply(True, f"teaching class {class_id} for {seconds:g} s", command)
        if command == "stop":
            box.stop_teaching()
            return reply(True, "stopped teaching", command)
        if command == "undo":
            undone = box.undo()
            return reply(True, "nothing to undo" if not undone else f"took back {undone[1]} of class {undone[0]}",
                         command)
        source = message.get("source")
        if not isinstance(source, str):
            return reply(False, 'source needs "source": picture, hand, face or pose', command)
        box.switch_source(source)
        return reply(True, f"looking at {source}", command)
    except (ValueError, LookupError) as exc:
        return reply(False, str(exc), command)
    except Exception as exc:  # a command never takes the MQTT thread down
        log.exception("MQTT command %s failed", command)
        return reply(False, f"failed: {exc}", command)


def _class_of(box, value) -> int:
    if isinstance(value, bool):
        raise ValueError("class is a class number or name")
    if isinstance(value, int):
        if not 0 <= value < box.num_classes:
            raise ValueError(f"class is 0 to {box.num_classes - 1}, not {value}")
        return value
    if isinstance(value, str):
        names = list(box.class_names())
        folded = [name.strip().casefold() for name in names]
        if value.strip().casefold() in folded:
            return folded.index(value.strip().casefold())
        raise ValueError(f"no class is called {value[:60]!r} (classes: {', '.join(names)})")
    raise ValueError("class is a class number or name")


__all__ = ["MqttOutput", "MqttStatus", "Topics", "discovery_config", "state_payload", "event_payload",
           "run_command"]
