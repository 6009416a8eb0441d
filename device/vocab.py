"""The words the box and its clients share, defined once.

States and names that cross a seam (the loop, the front panel, the phone page and
its JavaScript) are defined here and nowhere else; the page receives them as JSON
(:func:`as_json`) instead of re-typing them.
"""

from __future__ import annotations

from enum import Enum
from typing import Dict, Type


class Vocabulary(str, Enum):
    """A closed set of names; members compare equal to their plain string values."""

    def __str__(self) -> str:
        return self.value


class CameraState(Vocabulary):
    ONLINE = "online"
    OFFLINE = "offline"
    STARTING = "starting"


class AnswerState(Vocabulary):
    OK = "ok"  # a class is the answer
    UNKNOWN = "unknown"  # not like anything taught (or no usable frame)
    EMPTY = "nothing-learned"  # no class has an example yet
    ABSENT = "absent"  # a landmark source finds no hand (face, person) in view


class Button(Vocabulary):
    FUNCTION = "function"  # class buttons are their class numbers (0-based)


class PairState(Vocabulary):
    PENDING = "pending"
    APPROVED = "approved"
    UNKNOWN = "unknown"  # expired, cancelled or never made
    CANCELLED = "cancelled"


class LedPattern(Vocabulary):
    BOOT = "boot"
    FAULT = "fault"
    COUNTDOWN = "countdown"
    PAIRING = "pairing"
    FEEDBACK = "feedback"
    TEACHING = "teaching"
    ANSWER = "answer"
    OFF = "off"


class DoubtReason(Vocabulary):
    CLOSE = "close"  # the two best classes scored almost alike
    UNKNOWN = "unknown"  # the head answered "unknown"
    UNSURE = "unsure"  # the head named a class, with little confidence


class ExampleSource(Vocabulary):
    BUTTON = "button"  # a class button on the box
    PHONE = "phone"  # held on the page
    INBOX = "inbox"  # a doubtful frame filed on the page
    IMPORT = "import"
    MIGRATED = "migrated"  # carried over from an older box's head.npz


class SwitchState(Vocabulary):
    EMBEDDING = "embedding"
    DONE = "done"
    FAILED = "failed"


VOCABULARIES: Dict[str, Type[Vocabulary]] = {
    "camera_states": CameraState,
    "answer_states": AnswerState,
    "buttons": Button,
    "pair_states": PairState,
    "led_patterns": LedPattern,
    "doubt_reasons": DoubtReason,
    "example_sources": ExampleSource,
    "switch_states": SwitchState,
}


def as_json() -> Dict[str, Dict[str, str]]:
    """``{"camera_states": {"ONLINE": "online", ...}, ...}`` for the page's scripts."""
    return {key: {member.name: member.value for member in vocab} for key, vocab in VOCABULARIES.items()}
