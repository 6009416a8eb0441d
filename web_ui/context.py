"""What every blueprint of the page shares, kept on the app (``app.extensions["teachbox"]``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Set

from flask import current_app

from device.box import Box
from device.config import WebConfig

from .frames import FrameTap
from .security import PinGuard, Unlocks

EXTENSION = "teachbox"


@dataclass
class Services:
    box: Box
    web: WebConfig
    frames: FrameTap
    pins: PinGuard
    unlocks: Unlocks
    host_names: Set[str]


def services() -> Services:
    return current_app.extensions[EXTENSION]
