"""The seams hold: the page is a client of the box's public API, and nobody uses another library's insides."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WEB_UI = sorted((REPO / "web_ui").glob("*.py"))
ALL_CODE = sorted((REPO / "device").glob("*.py")) + WEB_UI + sorted((REPO / "scripts").glob("*.py"))
# what the page may use of the box: its public API, its config, errors and vocabularies
BOX_API = {"device.box", "device.config", "device.errors", "device.pairing", "device.vocab", "device.atomic"}
# and single names of other modules (none at present)
BOX_API_NAMES: dict = {}


def tree(path):
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def device_imports(path):
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "device":
            yield node.module, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "device":
                    yield alias.name, []


@pytest.mark.parametrize("path", WEB_UI, ids=lambda p: p.name)
def test_the_page_uses_only_the_boxs_public_api(path):
    for module, names in device_imports(path):
        allowed = module in BOX_API or (names and set(names) <= BOX_API_NAMES.get(module, set()))
        assert allowed, f"{path.name} imports {module} ({', '.join(names)}): go through device.box instead"
        assert not [n for n in names if n.startswith("_")], f"{path.name} imports private names from {module}"


@pytest.mark.parametrize("path", WEB_UI, ids=lambda p: p.name)
def test_the_page_never_touches_pins_or_the_loop_lock(path):
    source = path.read_text(encoding="utf-8")
    for insider in ("gpiozero", "MockFactory", "drive_low", "drive_high", r"\.lock\b", r"box\.loop\b",
                    r"box\.panel\b", r"box\.camera\b"):
        assert not re.search(insider, source), f"{path.name} uses {insider!r}: ask the box"


def private_attributes(path):
    """``x._name`` where ``x`` is not ``self``/``cls``: reaching into someone else's object."""
    for node in ast.walk(tree(path)):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            yield node.lineno, ast.unparse(node)


@pytest.mark.parametrize("path", WEB_UI, ids=lambda p: p.name)
def test_the_page_reaches_into_no_objects_private_attributes(path):
    assert list(private_attributes(path)) == []


LIBRARY_INSIDES = ("_default_pin_factory", "_map", "_sock", "_dispatcher", "_start", "_pin_factory", "_reserve")


@pytest.mark.parametrize("path", ALL_CODE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_private_api_of_gpiozero_or_waitress_is_used(path):
    used = [(line, text) for line, text in private_attributes(path) if text.rsplit(".", 1)[-1] in LIBRARY_INSIDES]
    keywords = [(node.lineno, node.arg) for node in ast.walk(tree(path))
                if isinstance(node, ast.keyword) and node.arg in LIBRARY_INSIDES]
    assert used == [] and keywords == []
