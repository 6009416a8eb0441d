"""The phone page in a real browser (Debian's Chromium driven by Playwright).

The appliance is built as ``teachbox run`` builds it (``build_box`` with the synthetic
camera and the simulated front panel, the real model, ``PageServer`` on waitress); the
browser is a phone (360x640, touch, mobile) unless said otherwise.  Every assertion is
about what a user sees on the page; waits are generous (``TIMEOUT``) and say only "it
happened at all", never how fast.

Needs ``/usr/bin/chromium`` and the ``playwright`` Python package (``scripts/dev.sh test``
installs both); without them these tests fail, they never skip.  A browser is never
downloaded.  Screenshots go to ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from device.app import build_box
from device.config import Config
from web_ui.server import PageServer

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright
except ImportError as exc:  # reported by the `browser` fixture: fail, never skip
    sync_playwright = None
    PLAYWRIGHT_IMPORT_ERROR = exc
else:
    PLAYWRIGHT_IMPORT_ERROR = None

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]
PIN = "246813"
TIMEOUT = 15_000  # ms: generous, only to fail instead of hanging
PHONE = {"viewport": {"width": 360, "height": 640}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
SCENES = {0: "red ball", 1: "blue box", 2: "green stripes"}  # what each class is taught in these tests
SETUP_HINT = "run `scripts/dev.sh test` (it installs Debian's chromium and the playwright package) first"


# -- the appliance --------------------------------------------------------------------------

class Served:
    """The running appliance: loop thread + page server."""

    def __init__(self, box, page_server, thread):
        self.box = box
        self.server = page_server
        self.thread = thread
        self.url = f"http://127.0.0.1:{page_server.port}/"

    def counts(self):
        return [c.examples for c in self.box.snapshot().loop.classes]


@contextlib.contextmanager
def served_box(model_path, state, *, model_dir=None, camera="synthetic", embedder=None):
    """A box as `teachbox run --simulate` builds it, its loop running and its page served.

    ``model_dir``: the box finds its models in this folder (so the phone may switch among
    them) instead of being given ``model_path`` (which pins the model).  ``camera``: the
    ``[camera] source``.  ``embedder``: what the box looks with (a hand source: it looks at hands).
    """
    model = {"dir": str(model_dir)} if model_dir else {"path": str(model_path)}
    config = (Config()
              .override("model", threads=2, **model)
              .override("storage", state_dir=str(state))
              .override("camera", source=camera)
              .override("web", host="127.0.0.1", port=0, pin=PIN))
    appliance = build_box(config, simulate=True, embedder=embedder)
    page_server = PageServer(appliance, config)
    page_server.start()
    crashed = []

    def run():
        try:
            appliance.run()
        except BaseException as exc:  # noqa: BLE001 - reported below
            crashed.append(exc)
            raise

    thread = threading.Thread(target=run, name="teachbox-loop", daemon=True)
    thread.start()
    try:
        yield Served(appliance, page_server, thread)
    finally:
        appliance.stop()
        thread.join(timeout=15)
        page_server.close()
        appliance.close()
    assert not thread.is_alive(), "the loop thread did not stop"
    assert not crashed, f"the loop crashed: {crashed[0]!r}"


@pytest.fixture(scope="module")
def box(model_path, tmp_path_factory):
    with served_box(model_path, tmp_path_factory.mktemp("browser-state")) as served:
        yield served


@pytest.fixture
def own_box(model_path, tmp_path):
    """A box of the test's own, for a test whose traces (wrong PINs from this machine) must not stay."""
    with served_box(model_path, tmp_path / "state") as served:
        yield served


# -- the browser ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    if sync_playwright is None:
        pytest.fail(f"the playwright Python package is missing ({PLAYWRIGHT_IMPORT_ERROR}): {SETUP_HINT}",
                    pytrace=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: {SETUP_HINT}", pytrace=False)
    expect.set_options(timeout=TIMEOUT)
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except PlaywrightError as exc:
            pytest.fail(f"cannot start {CHROMIUM} ({exc}): {SETUP_HINT}", pytrace=False)
        try:
            yield chromium
        finally:
            chromium.close()


def new_context(browser, box, options=PHONE):
    context = browser.new_context(base_url=box.url, **options)
    context.set_default_timeout(TIMEOUT)
    return context


@pytest.fixture(scope="module")
def phone(browser, box):
    """The user's phone: one browser context (one session cookie) for the whole module."""
    context = new_context(browser, box)
    yield context
    context.close()


class Tab:
    """A page plus what it requested and which uncaught script errors it had."""

    def __init__(self, context):
        self.page = context.new_page()
        self.requests = []
        self.errors = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)

    def _console(self, message):
        # a failed frame or a refused request is logged by the browser itself; anything else the
        # page's script logs as an error is a bug (the renderers log what they catch)
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)

    def open(self):
        self.page.goto("/")
        # rendered: the first status answer built the class cards
        expect(self.page.locator(".class-card")).to_have_count(4)
        return self.page

    def close(self):
        self.page.close()
        assert not self.errors, f"uncaught script errors on the page: {self.errors}"


@pytest.fixture
def tab(phone):
    tab = Tab(phone)
    tab.open()
    yield tab
    tab.close()


@pytest.fixture
def page(tab):
    return tab.page


# -- helpers -----------------------------------------------------------------------------------

def screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def no_horizontal_scroll(page, width):
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page is {scroll_width}px wide at a {width}px viewport: it scrolls sideways"


def teach_buttons(page):
    return page.locator(".class-card .teach")


def card(page, class_id):
    return page.locator(f'.class-card[data-class="{class_id}"]')


def shown_count(page, class_id):
    text = card(page, class_id).locator(".count").inner_text()
    match = re.match(r"\s*(\d+) examples?\b", text)
    assert match, f"class {class_id + 1} shows {text!r} instead of a number of examples"
    return int(match.group(1))


def wait_for_count(page, class_id, at_least):
    page.wait_for_function(
        """([c, n]) => {
             const el = document.querySelector(`.class-card[data-class="${c}"] .count`);
             return !!el && parseInt(el.textContent, 10) >= n;
           }""",
        arg=[class_id, at_least], timeout=TIMEOUT)


def dismiss_banner(page):
    if page.locator("#banner").is_visible():
        page.locator("#banner-close").click()
        expect(page.locator("#banner")).to_be_hidden()


def select_source(page, scene):
    """Choose what the synthetic camera shows, as a user does, and wait until the box shows it."""
    page.locator("#source").select_option(scene)
    expect(page.locator("#camera")).to_contain_text(f"showing {scene},")


def unlock_with_pin(page):
    if "unlocked" in (page.locator("body").get_attribute("class") or ""):
        return
    page.locator("#pin").fill(PIN)
    page.locator("#pin-submit").click()
    expect(page.locator("body")).to_have_class(re.compile(r"\bunlocked\b"))
    for i in range(4):
        expect(teach_buttons(page).nth(i)).to_be_enabled()


def press_and_hold(page, class_id):
    """Put a finger (the mouse) on the class's teach button and keep it there."""
    dismiss_banner(page)  # the banner lies over the bottom of the page
    button = card(page, class_id).locator(".teach")
    button.hover()  # scrolls it into view and checks nothing covers it
    page.mouse.down()
    expect(button).to_have_class(re.compile(r"\bheld\b"))
    return button


def let_go(page, class_id):
    page.mouse.up()
    expect(card(page, class_id).locator(".teach")).not_to_have_class(re.compile(r"\bheld\b"))
    expect(card(page, class_id)).not_to_have_class(re.compile(r"\bteaching\b"))  # the box stopped too


def teach(page, class_id, scene):
    """Show ``scene``, hold class ``class_id``'s teach button until it has one more example, let go."""
    select_source(page, scene)
    before = shown_count(page, class_id)
    press_and_hold(page, class_id)
    try:
        wait_for_count(page, class_id, before + 1)
    finally:
        let_go(page, class_id)


def ensure_taught(page, box):
    """The three scenes taught (by test 3; again here if that test did not run first)."""
    unlock_with_pin(page)
    counts = box.counts()
    for class_id, scene in SCENES.items():
        if not counts[class_id]:
            teach(page, class_id, scene)


def names_class(name):
    """The answer naming ``name``, sure of it or not ("Not sure — maybe Cup")."""
    return re.compile(rf"^(Not sure \u2014 maybe )?{re.escape(name)}$")


def api_status(page):
    response = page.request.get("/api/status")
    assert response.ok, f"GET /api/status answered {response.status}"
    return response.json()


# -- the tests ----------------------------------------------------------------------------------

STATIC = REPO / "web_ui" / "static"
VOCABULARY = ("online", "offline", "starting", "nothing-learned", "function", "pending", "approved", "cancelled",
              "unknown", "boot", "fault", "countdown", "pairing", "feedback", "embedding", "migrated", "absent")


def test_an_installed_box_gets_every_file_of_the_page():
    """install.sh pip-installs the project (not editable): the package data must name every page file."""
    import fnmatch
    import tomllib

    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages, data = setuptools["packages"], setuptools.get("package-data", {})
    left_out = []
    for folder in ("static", "templates"):
        for path in sorted((REPO / "web_ui" / folder).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            parts = path.relative_to(REPO).parts
            # the deepest listed package holding the file; its patterns never cross a folder
            owners = [".".join(parts[:n]) for n in range(len(parts) - 1, 0, -1) if ".".join(parts[:n]) in packages]
            owner = owners[0] if owners else None
            inside = "/".join(parts[len(owner.split(".")):]) if owner else ""
            if not owner or not any(fnmatch.fnmatch(inside, pattern) and inside.count("/") == pattern.count("/")
                                    for pattern in data.get(owner, [])):
                left_out.append("/".join(parts))
    assert not left_out, f"pyproject's [tool.setuptools] packages/package-data leave out: {left_out}"


def test_the_page_spells_the_box_vocabulary_in_one_place():
    """State words come from the template's #vocab (read by vocab.js); no module re-types them, vocab.js neither."""
    quoted = re.compile(r"""(['"`])(%s)\1""" % "|".join(map(re.escape, VOCABULARY)))
    modules = sorted(STATIC.glob("*.js"))
    assert (STATIC / "main.js") in modules and (STATIC / "vocab.js") in modules and not (STATIC / "app.js").exists()
    retyped = {path.name: sorted({m.group(2) for m in quoted.finditer(path.read_text())}) for path in modules}
    assert not any(retyped.values()), f"state words typed outside vocab.js: {retyped}"
    html = (REPO / "web_ui" / "templates" / "index.html").read_text()
    assert html.index('id="vocab" type="application/json"') < html.index('type="module"')


def test_the_page_uses_the_vocabularies_the_box_sends(page):
    from device.vocab import as_json

    shown = page.evaluate("import('/static/vocab.js').then((m) => JSON.parse(JSON.stringify(m.default)))")
    assert shown == as_json()  # every group, from the server: none left out, none from a copy of its own


def test_phone_page_loads_fits_and_is_self_contained(phone, box):
    tab = Tab(phone)
    page = tab.open()
    try:
        expect(page.locator("#answer")).to_have_text("Nothing learned yet")
        expect(page.locator("#answer-card")).to_have_attribute("data-state", "nothing-learned")
        page.wait_for_function("() => { const img = document.getElementById('live');"
                               " return img.complete && img.naturalWidth > 0; }", timeout=TIMEOUT)
        expect(page.locator("#live")).to_be_visible()
        expect(page.locator("#fps")).to_have_text(re.compile(r"^\d+(\.\d+)?$"))
        expect(page.locator("#conn")).to_have_text("Simulated box")
        expect(page.locator("#panel")).to_be_visible()
        no_horizontal_scroll(page, 360)
        screenshot(page, "phone-01-loaded-nothing-learned")
        foreign = [url for url in tab.requests if not url.startswith(box.url) and not url.startswith("data:")]
        assert not foreign, f"the page loaded resources from elsewhere: {foreign}"
        assert any(url.startswith(box.url + "api/frame.jpg") for url in tab.requests)
    finally:
        tab.close()


def test_locked_by_default_and_unlocks_with_the_pin(page):
    expect(page.locator("#lock-title")).to_have_text("Locked")
    expect(page.locator("body")).to_have_class(re.compile(r"\blocked\b"))
    expect(teach_buttons(page)).to_have_count(4)
    for i in range(4):
        expect(teach_buttons(page).nth(i)).to_be_disabled()
    expect(page.locator("#undo")).to_be_disabled()

    page.locator("#pin").fill("0000")  # too short: the page says so and sends nothing
    page.locator("#pin-submit").click()
    expect(page.locator("#banner-text")).to_contain_text("The PIN has 6 to 12 digits")
    page.locator("#pin").fill("000000")
    page.locator("#pin-submit").click()
    expect(page.locator("#banner")).to_be_visible()
    expect(page.locator("#banner-text")).to_contain_text("Wrong PIN")
    expect(page.locator("#banner")).to_have_class(re.compile(r"\bbanner-error\b"))
    expect(page.locator("#lock-title")).to_have_text("Locked")
    for i in range(4):
        expect(teach_buttons(page).nth(i)).to_be_disabled()

    page.locator("#pin").fill(PIN)
    page.locator("#pin-submit").click()
    expect(page.locator("#lock-title")).to_have_text("Unlocked")
    for i in range(4):
        expect(teach_buttons(page).nth(i)).to_be_enabled()
    expect(page.locator("#undo")).to_be_enabled()
    expect(page.locator("#banner-text")).to_contain_text("Unlocked")
    screenshot(page, "phone-02-unlocked")


def test_teach_three_objects_and_the_answer_follows(page, box):
    unlock_with_pin(page)
    for class_id, scene in SCENES.items():
        teach(page, class_id, scene)
        assert box.counts()[class_id] >= 1
    screenshot(page, "phone-03-taught-three")
    for scene, answer in (("blue box", "Class 2"), ("green stripes", "Class 3"), ("red ball", "Class 1"),
                          ("blue box", "Class 2")):
        select_source(page, scene)
        # one example each: the box names the class but is honest about how sure it can be
        expect(page.locator("#answer")).to_have_text(names_class(answer))
        expect(page.locator("#answer-card")).to_have_attribute("data-state", "ok")
        expect(page.locator("#confidence")).not_to_have_text("100% sure")
        class_id = int(answer.split()[1]) - 1
        expect(card(page, class_id)).to_have_class(re.compile(r"\banswered\b"))
    screenshot(page, "phone-03-answer-blue-box")


def test_holding_the_teach_button_keeps_adding_examples(page, box):
    unlock_with_pin(page)
    class_id = 3  # the fourth class, taught scenes none of the other classes know
    select_source(page, "yellow ring")
    before = shown_count(page, class_id)
    assert before == box.counts()[class_id]

    button = press_and_hold(page, class_id)
    try:
        expect(button).to_have_text("Teaching\u2026")
        expect(page.locator("#teaching-now")).to_have_text("Teaching \u201cClass 4\u201d\u2026")
        started = time.monotonic()
        scenes = ("empty table", "yellow ring")
        switches = 0
        while time.monotonic() - started < 1.5:  # different scenes: no frame is a near-duplicate
            switches += 1
            select_source(page, scenes[switches % 2])
        wait_for_count(page, class_id, before + 2)  # normally reached during the 1.5 s already
        expect(button).to_have_class(re.compile(r"\bheld\b"))  # the finger never left it
    finally:
        let_go(page, class_id)

    # after letting go the count stays where it is
    held = box.counts()[class_id]
    assert held >= before + 2
    expect(card(page, class_id).locator(".count")).to_have_text(f"{held} examples")
    page.wait_for_timeout(1000)
    assert box.counts()[class_id] == held
    assert shown_count(page, class_id) == held
    expect(button).to_have_text("Hold to teach")
    expect(page.locator("#teaching-now")).to_be_hidden()

    # and Undo takes the whole hold back (keeping these examples out of the other tests)
    page.locator("#undo").click()
    expect(page.locator("#banner-text")).to_contain_text(f"Undone: {held - before} examples of \u201cClass 4\u201d")
    expect(card(page, class_id).locator(".count")).to_have_text(f"{before} examples")
    assert box.counts()[class_id] == before


LEDS_ARE = """([lit, n]) => {
    const levels = [];
    for (let i = 0; i < n; i++) {
        const led = document.querySelector(`#panel .led[data-led="${i}"]`);
        if (!led) return false;
        levels.push(parseFloat(led.getAttribute('data-level')));
    }
    return levels.every((level, i) => i === lit ? level > 0 : level === 0);
}"""


def test_virtual_leds_follow_the_answer(page, box):
    ensure_taught(page, box)
    expect(page.locator("#panel .led")).to_have_count(4)
    for scene, lit in (("blue box", 1), ("red ball", 0), ("green stripes", 2)):
        select_source(page, scene)
        expect(page.locator("#answer")).to_have_text(names_class(f"Class {lit + 1}"))
        page.wait_for_function(LEDS_ARE, arg=[lit, 4], timeout=TIMEOUT)
        levels = [float(page.locator(f'#panel .led[data-led="{i}"]').get_attribute("data-level")) for i in range(4)]
        assert levels[lit] == max(levels) > 0, levels
        expect(page.locator(f'#panel .led[data-led="{lit}"]')).to_have_class(re.compile(r"\blit\b"))
        if scene == "blue box":
            screenshot(page, "phone-05-leds-blue-box")


def test_pairing_with_function_and_the_simulated_button_the_box_names(browser, box):
    counts = box.counts()
    first = new_context(browser, box)
    second = new_context(browser, box)
    try:
        tab = Tab(first)
        page = tab.open()
        expect(page.locator("#lock-title")).to_have_text("Locked")
        for i in range(4):
            expect(teach_buttons(page).nth(i)).to_be_disabled()
        page.locator("#unlock-pair").click()
        expect(page.locator("#pair-pending")).to_be_visible()
        screenshot(page, "phone-06-pairing-pending")
        code = api_status(page)["auth"]["pair"]["code"]
        latch = page.locator("#panel .sim-latch")  # at the box: hold Function ...
        latch.click()
        expect(latch).to_have_attribute("aria-pressed", "true")
        page.locator(f'#panel .sim-button[data-button="{code - 1}"]').click()  # ... and press the number
        latch.click()
        expect(latch).to_have_attribute("aria-pressed", "false")
        expect(page.locator("#lock-title")).to_have_text("Unlocked")
        for i in range(4):
            expect(teach_buttons(page).nth(i)).to_be_enabled()
        expect(page.locator("#pair-pending")).to_be_hidden()
        expect(page.locator("#banner-text")).to_contain_text("Paired")
        screenshot(page, "phone-06-paired")
        tab.close()
        # the press approved the pairing; it did not undo anything
        assert box.counts() == counts

        other = Tab(second)
        page = other.open()
        expect(page.locator("#answer")).not_to_have_text("\u2026")
        page.wait_for_timeout(700)  # a couple of status polls: still locked afterwards
        expect(page.locator("#lock-title")).to_have_text("Locked")
        for i in range(4):
            expect(teach_buttons(page).nth(i)).to_be_disabled()
        assert api_status(page)["auth"]["unlocked"] is False
        other.close()
    finally:
        first.close()
        second.close()


def test_rename_from_the_page(page, box):
    unlock_with_pin(page)
    name = card(page, 0).locator(".name")
    name.click()
    field = card(page, 0).locator(".name-input")
    expect(field).to_be_focused()
    field.fill("Cup")
    field.press("Enter")
    expect(field).to_have_count(0)
    expect(name).to_have_text("Cup")
    expect(page.locator('.sim-button[data-button="0"] .sim-name')).to_have_text("Cup")
    assert api_status(page)["classes"][0]["name"] == "Cup"
    page.wait_for_timeout(700)  # the next polls confirm it
    expect(name).to_have_text("Cup")

    name.click()
    field = card(page, 0).locator(".name-input")
    field.fill("<b>")
    field.press("Enter")
    expect(page.locator("#banner")).to_be_visible()
    expect(page.locator("#banner")).to_have_class(re.compile(r"\bbanner-error\b"))
    expect(page.locator("#banner-text")).to_contain_text("contains '<'")
    expect(name).to_have_text("Cup")
    page.wait_for_timeout(700)
    expect(name).to_have_text("Cup")
    assert api_status(page)["classes"][0]["name"] == "Cup"
    screenshot(page, "phone-07-rename-refused")


def test_desktop_layout(browser, box):
    context = new_context(browser, box, DESKTOP)
    try:
        tab = Tab(context)
        page = tab.open()
        page.wait_for_function("() => { const img = document.getElementById('live');"
                               " return img.complete && img.naturalWidth > 0; }", timeout=TIMEOUT)
        expect(page.locator("#fps")).to_have_text(re.compile(r"^\d+(\.\d+)?$"))
        expect(page.locator("#panel")).to_be_visible()
        no_horizontal_scroll(page, 1280)
        # two columns: the answer and the classes side by side
        see = page.locator(".col-see").bounding_box()
        teach_col = page.locator(".col-teach").bounding_box()
        assert teach_col["x"] >= see["x"] + see["width"] - 1, (see, teach_col)
        screenshot(page, "desktop-08-1280x800")
        tab.close()
    finally:
        context.close()


# -- friction a newcomer met -------------------------------------------------------------------

def view_shot(page, name):
    """What the screen shows right now (a full-page shot cannot show a sticky bar where it is)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def in_viewport(page, selector):
    """The element is shown and lies wholly inside the window (as scrolled now)."""
    locator = page.locator(selector)
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    size = page.viewport_size
    assert box is not None, f"{selector} has no box"
    inside = box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= size["width"] + 0.5 \
        and box["y"] + box["height"] <= size["height"] + 0.5
    assert inside, f"{selector} is at {box}, not inside the {size['width']}x{size['height']} window"
    return box


def inside_the_card(page, selector):
    """Wholly inside the answer card (which clips what does not fit, on a phone)."""
    inner, outer = page.locator(selector).bounding_box(), page.locator("#answer-card").bounding_box()
    assert inner["y"] >= outer["y"] and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5, \
        f"{selector} ({inner}) is cut off by the answer card ({outer})"


def page_width(page):
    return page.evaluate("document.scrollingElement.scrollWidth")


def test_phone_keeps_the_camera_and_the_answer_in_view(page, box):
    """Scrolled down to class 4 or to the simulated panel, the live view and the answer stay on screen."""
    ensure_taught(page, box)
    page.wait_for_function("() => document.getElementById('live').naturalWidth > 0", timeout=TIMEOUT)
    assert page.evaluate("document.scrollingElement.scrollHeight") > 2 * 640  # there is something to scroll
    button = card(page, 3).locator(".teach")
    button.scroll_into_view_if_needed()
    in_viewport(page, '.class-card[data-class="3"] .teach')
    in_viewport(page, "#live")
    in_viewport(page, "#answer")
    assert page.evaluate("window.scrollY") > 300
    # teaching class 4 from there: what the box sees, its answer and the teaching line all on screen
    select_source(page, "yellow ring")
    press_and_hold(page, 3)
    try:
        expect(page.locator("#teaching-now")).to_be_visible()
        in_viewport(page, "#teaching-now")
        in_viewport(page, "#live")
        in_viewport(page, "#answer")
        view_shot(page, "phone-10-teaching-class-4-scrolled")
    finally:
        let_go(page, 3)
    page.locator("#undo").click()  # keep class 4 empty for the other tests
    expect(card(page, 3).locator(".count")).to_have_text("0 examples")

    page.locator('#panel .sim-function').scroll_into_view_if_needed()
    in_viewport(page, "#panel .sim-function")
    in_viewport(page, "#live")
    in_viewport(page, "#answer")
    view_shot(page, "phone-10-sim-panel-scrolled")
    no_horizontal_scroll(page, 360)

    page.evaluate("window.scrollTo(0, 0)")
    view_shot(page, "phone-10-top")


def test_phone_touch_targets_are_big_enough(page, box):
    unlock_with_pin(page)
    small = page.evaluate("""() => [...document.querySelectorAll('button, select, input:not([type=file]), a.btn')]
        .filter((el) => el.offsetParent !== null && !el.disabled)
        .map((el) => { const r = el.getBoundingClientRect();
                       return {what: el.id || el.className || el.tagName, w: r.width, h: r.height}; })
        .filter((r) => r.w < 44 || r.h < 44)""")
    assert not small, f"controls smaller than 44x44 px: {small}"


def test_renaming_on_a_phone_fits_and_says_when_a_name_is_too_long(page, box):
    unlock_with_pin(page)
    name = card(page, 1).locator(".name")
    old = name.inner_text()
    name.click()
    field = card(page, 1).locator(".name-input")
    expect(field).to_be_focused()
    assert page_width(page) <= 360, f"renaming makes the page {page_width(page)}px wide at 360px"
    help_line = card(page, 1).locator(".name-help")
    expect(help_line).to_contain_text(f"{len(old)}/32")

    long_name = "A very long name for the blue box on the table"  # 46 characters
    field.fill("")
    field.type(long_name)
    expect(field).to_have_value(long_name)  # nothing the user typed is cut off silently
    expect(help_line).to_contain_text(f"{len(long_name)}/32")
    expect(help_line).to_contain_text("at most 32 characters")
    assert page_width(page) <= 360, f"renaming makes the page {page_width(page)}px wide at 360px"
    view_shot(page, "phone-11-rename-too-long")
    field.press("Enter")  # refused: still editing, the message says why
    expect(field).to_be_visible()
    expect(field).to_be_focused()
    expect(help_line).to_contain_text("at most 32 characters")

    fitting = long_name[:32].rstrip()
    field.fill(fitting)
    expect(help_line).to_contain_text(f"{len(fitting)}/32")
    field.press("Enter")
    expect(field).to_have_count(0)
    expect(name).to_have_text(fitting)
    assert api_status(page)["classes"][1]["name"] == fitting
    assert page_width(page) <= 360

    # at the limit the field says so as well
    name.click()
    field = card(page, 1).locator(".name-input")
    field.fill("x" * 32)
    expect(card(page, 1).locator(".name-help")).to_contain_text("32/32")
    expect(card(page, 1).locator(".name-help")).to_contain_text("at most 32 characters")
    field.fill(old)
    field.press("Enter")
    expect(name).to_have_text(old)


def test_desktop_uses_the_column_under_the_camera(browser, box):
    context = new_context(browser, box, DESKTOP)
    try:
        tab = Tab(context)
        page = tab.open()
        expect(page.locator("#panel")).to_be_visible()
        live = page.locator(".live-card").bounding_box()
        panel = page.locator("#panel").bounding_box()
        details = page.locator(".details-card").bounding_box()
        teach_col = page.locator(".col-teach").bounding_box()
        # the panel and the details sit in the left column, under the camera, beside the classes
        for part in (panel, details):
            assert abs(part["x"] - live["x"]) < 2 and part["x"] + part["width"] <= teach_col["x"], (part, teach_col)
        assert panel["y"] >= live["y"] + live["height"], (live, panel)
        assert details["y"] >= panel["y"] + panel["height"], (panel, details)
        assert panel["y"] < teach_col["y"] + teach_col["height"], "the panel is below the classes, not beside them"
        # no long empty column: the page is not much taller than the right column
        height = page.evaluate("document.scrollingElement.scrollHeight")
        assert height <= max(teach_col["y"] + teach_col["height"], details["y"] + details["height"]) + 140
        no_horizontal_scroll(page, 1280)
        view_shot(page, "desktop-12-1280x800")
        tab.close()
    finally:
        context.close()


def wait_counts(box, expected, timeout=TIMEOUT / 1000):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if box.counts() == expected:
            return
        time.sleep(0.05)
    assert box.counts() == expected


@contextlib.contextmanager
def desktop_panel(browser, box, phone):
    """A desktop page at the simulated panel, every class taught and the camera on the blue box."""
    helper = Tab(phone)
    ensure_taught(helper.open(), box)
    helper.close()
    context = new_context(browser, box, DESKTOP)
    try:
        tab = Tab(context)
        page = tab.open()
        select_source(page, "blue box")
        yield page
        tab.close()
    finally:
        context.close()


def test_function_plus_a_number_with_a_mouse(browser, box, phone):
    """A desktop user with one mouse: Keep Function down, click 2 = clear class 2 (no undo, no teaching)."""
    with desktop_panel(browser, box, phone) as page:
        two = page.locator('#panel .sim-button[data-button="1"]')
        function = page.locator('#panel .sim-function')
        latch = page.locator("#panel .sim-latch")

        # a mouse hold on 2 teaches class 2
        before = box.counts()
        two.hover()
        page.mouse.down()
        wait_for_count(page, 1, before[1] + 1)
        page.mouse.up()
        expect(card(page, 1)).not_to_have_class(re.compile(r"\bteaching\b"))
        counts = box.counts()
        assert counts[1] > before[1]

        # a click on Function is a tap: undo that hold
        function.click()
        expect(card(page, 1).locator(".count")).to_have_text(examples_text(before[1]))
        wait_counts(box, before)

        # Function + 2 with the mouse: latch, click 2
        expect(latch).to_have_text("Keep Function down")
        latch.click()
        expect(latch).to_have_attribute("aria-pressed", "true")
        expect(latch).to_have_text("Let go of Function")
        expect(function).to_have_class(re.compile(r"\bpressed\b"))
        expect(page.locator("#latch-hint")).to_be_visible()
        view_shot(page, "desktop-13-function-kept-down")
        name = card(page, 1).locator(".name").inner_text()
        two.click()
        expected = list(before)
        expected[1] = 0
        expect(card(page, 1).locator(".count")).to_have_text("0 examples")
        wait_counts(box, expected)
        page.wait_for_timeout(1000)  # nothing else happened: no undo, no new example of class 2
        assert box.counts() == expected
        expect(card(page, 1).locator(".name")).to_have_text(name)  # clearing a class keeps its name
        latch.click()  # let go: no undo
        expect(latch).to_have_attribute("aria-pressed", "false")
        expect(function).not_to_have_class(re.compile(r"\bpressed\b"))
        page.wait_for_timeout(1000)
        assert box.counts() == expected


def examples_text(n):
    return f"{n} example" + ("" if n == 1 else "s")


def test_clear_all_keeps_the_class_names(page, box):
    ensure_taught(page, box)
    name = card(page, 2).locator(".name")
    old = name.inner_text()
    name.click()
    field = card(page, 2).locator(".name-input")
    field.fill("Green stripes")
    field.press("Enter")
    expect(name).to_have_text("Green stripes")
    names = [card(page, i).locator(".name").inner_text() for i in range(4)]
    asked = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", answer)
    page.locator("#clear-all").click()
    expect(page.locator("#banner-text")).to_contain_text("the names stay")
    assert asked and "Forget every example of every class? Class names stay." in asked[0], asked
    for i in range(4):
        expect(card(page, i).locator(".count")).to_have_text("0 examples")
        expect(card(page, i).locator(".name")).to_have_text(names[i])
    assert box.counts() == [0, 0, 0, 0]
    assert [c["name"] for c in api_status(page)["classes"]] == names
    expect(page.locator("#answer")).to_have_text("Nothing learned yet")
    # put back what the other tests expect
    name.click()
    field = card(page, 2).locator(".name-input")
    field.fill(old)
    field.press("Enter")
    expect(name).to_have_text(old)
    ensure_taught(page, box)


CONTRAST = """() => {
    const rgb = (text) => { const m = text.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
        const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
        return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
    const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
    const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
    const behind = (el) => { for (let n = el; n; n = n.parentElement) {
        const c = rgb(getComputedStyle(n).backgroundColor); if (c && c.a > 0.5) return c; }
        return {r: 255, g: 255, b: 255, a: 1}; };
    let el = document.activeElement;
    if (!el || el === document.body) return null;
    const what = el.id || el.getAttribute('aria-label') || el.textContent.trim().slice(0, 30) || el.tagName;
    // a hidden input inside its label (the file picker, the "Looks at" choices): the label shows the ring
    const ring = el.matches('.file-input, .look-input') ? el.closest('label') : el;
    const style = getComputedStyle(ring);
    const colour = rgb(style.outlineColor);
    if (style.outlineStyle === 'none' || parseFloat(style.outlineWidth) < 2 || !colour)
        return {what, ratio: 0, why: 'no focus ring: ' + style.outlineStyle + ' ' + style.outlineWidth};
    // the ring is drawn outside the control (outline-offset): next to it is the background it sits on
    const next = behind(ring.parentElement);
    return {what, ratio: ratio(colour, next), ring: style.outlineColor, next: `rgb(${next.r}, ${next.g}, ${next.b})`};
}"""


def focus_rings(page, limit=80):
    """Tab through the page; the focus ring of every control it reaches, with its contrast."""
    page.locator("body").click(position={"x": 2, "y": 2})
    seen, rings = set(), []
    for _ in range(limit):
        page.keyboard.press("Tab")
        ring = page.evaluate(CONTRAST)
        if ring is None:
            continue
        key = ring["what"]
        if key in seen:
            break
        seen.add(key)
        rings.append(ring)
    return rings


def test_focus_rings_stand_out(browser, box):
    """Every control reached with Tab shows a focus ring with at least 3:1 contrast (WCAG 1.4.11)."""
    context = new_context(browser, box, DESKTOP)
    try:
        tab = Tab(context)
        page = tab.open()
        locked = focus_rings(page)
        assert any(r["what"] == "pin" for r in locked), [r["what"] for r in locked]
        unlock_with_pin(page)
        dismiss_banner(page)
        unlocked = focus_rings(page)
        names = [r["what"] for r in unlocked]
        assert "source" in names and "undo" in names and "lock" in names, names
        assert any("Hold to teach" in n for n in names), names
        bad = [r for r in locked + unlocked if r["ratio"] < 3]
        assert not bad, f"focus rings under 3:1: {bad}"
        page.locator("#undo").focus()
        view_shot(page, "desktop-14-focus-ring")
        tab.close()
    finally:
        context.close()


def test_simulated_panel_with_the_keyboard(browser, box, phone):
    """Space held on 2 teaches class 2, Space on Function undoes, Keep Function down + Space on 2 clears it."""
    with desktop_panel(browser, box, phone) as page:
        two = page.locator('#panel .sim-button[data-button="1"]')
        before = box.counts()
        two.focus()
        page.keyboard.down(" ")
        wait_for_count(page, 1, before[1] + 1)
        page.keyboard.up(" ")
        expect(card(page, 1)).not_to_have_class(re.compile(r"\bteaching\b"))
        page.locator("#panel .sim-function").focus()
        page.keyboard.press(" ")
        expect(card(page, 1).locator(".count")).to_have_text(examples_text(before[1]))
        wait_counts(box, before)

        page.locator("#panel .sim-latch").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#panel .sim-latch")).to_have_attribute("aria-pressed", "true")
        expect(two).to_have_attribute("aria-label", re.compile(r"^Function \+ 2: clear "))
        two.focus()
        page.keyboard.press(" ")
        expect(card(page, 1).locator(".count")).to_have_text("0 examples")
        expected = list(before)
        expected[1] = 0
        wait_counts(box, expected)
        page.locator("#panel .sim-latch").focus()
        page.keyboard.press(" ")
        expect(page.locator("#panel .sim-latch")).to_have_attribute("aria-pressed", "false")
        page.wait_for_timeout(1000)
        assert box.counts() == expected
    helper = Tab(phone)
    ensure_taught(helper.open(), box)  # class 2 back for whoever comes next
    helper.close()


# -- what the page shows for each part of the status (the status edited on its way in) -------------

def edited_status(context, box, change, options=PHONE):
    """A page whose /api/status answers pass through ``change(data)`` first (everything else is real)."""
    def handle(route):
        try:
            response = route.fetch()
            data = response.json()
            change(data)
            route.fulfill(response=response, json=data)
        except PlaywrightError:  # the page closed while its poll was on the way
            pass

    tab = Tab(context)
    tab.page.route("**/api/status", handle)
    tab.open()
    close = tab.close

    def close_edited():
        tab.page.unroute_all(behavior="ignoreErrors")
        close()

    tab.close = close_edited
    return tab


def test_an_answer_it_is_not_sure_of_says_so(browser, box):
    context = new_context(browser, box)
    try:
        def unsure(data):
            data.update(state="ok", answer_id=1, answer=data["classes"][1]["name"], confidence=0.41, sure=False)
            data["camera"]["state"] = "online"

        tab = edited_status(context, box, unsure)
        page = tab.page
        name = api_status(page)["classes"][1]["name"]
        expect(page.locator("#answer")).to_have_text(f"Not sure \u2014 maybe {name}")
        expect(page.locator("#confidence")).to_have_text("only 41% sure")
        expect(page.locator("#confidence")).not_to_contain_text("100%")
        inside_the_card(page, "#confidence")
        inside_the_card(page, "#answer-hint")
        view_shot(page, "phone-15-not-sure-maybe")
        tab.close()

        tab = edited_status(context, box, lambda data: data.update(state="unknown", answer=None, answer_id=None,
                                                                   sure=False))
        expect(tab.page.locator("#answer")).to_have_text("Unknown")
        expect(tab.page.locator("#answer-hint")).to_have_text("not like anything it was taught")
        expect(tab.page.locator("#confidence")).to_be_hidden()
        tab.close()
    finally:
        context.close()


def test_a_hold_shows_its_count_and_same_picture_in_view(browser, box):
    context = new_context(browser, box)
    try:
        def holding(data):
            data.update(teaching=3, burst={"class": 3, "taught": 5, "skipped": 12, "same_picture": True})

        tab = edited_status(context, box, holding)
        page = tab.page
        card(page, 3).locator(".teach").scroll_into_view_if_needed()
        expect(page.locator("#burst")).to_have_text("5 taught, 12 skipped")
        expect(page.locator("#same-picture")).to_have_text("Same picture \u2014 move it a little")
        for selector in ("#live", "#answer", "#teaching-now", "#burst", "#same-picture"):
            in_viewport(page, selector)
        inside_the_card(page, "#same-picture")  # not cut off by the bar
        view_shot(page, "phone-16-hold-same-picture")
        tab.close()
    finally:
        context.close()


def test_without_presence_the_panel_shows_its_lamps_but_not_its_buttons(browser, box):
    context = new_context(browser, box)
    try:
        tab = edited_status(context, box, lambda data: data["auth"].update(presence=False))
        page = tab.page
        expect(page.locator("#panel-locked")).to_have_text("Unlock to use the simulated buttons.")
        expect(page.locator("#panel .led")).to_have_count(4)
        for button in page.locator("#panel button").all():
            expect(button).to_be_disabled()
        expect(page.locator("#source")).to_be_disabled()
        expect(page.locator("#source-locked")).to_be_visible()
        page.locator("#panel").scroll_into_view_if_needed()
        view_shot(page, "phone-21-panel-without-presence")
        tab.close()
    finally:
        context.close()


def test_the_auth_figures_are_shown(browser, box):
    context = new_context(browser, box)
    try:
        def auth(data):
            data["auth"].update(unlocked=True, expires_in=43080, unlock_hours=12,
                                pair={"code": 3, "expires_in": 40.0, "mine": False})

        tab = edited_status(context, box, auth)
        page = tab.page
        expect(page.locator("#unlock-left")).to_have_text("Unlocked for 11 h 58 min more (an unlock lasts 12 h).")
        expect(page.locator("#pair-alert")).to_have_text(
            "A browser is asking to unlock: button 3 blinks. Only approve it (Function + that button) if that is you.")
        view_shot(page, "phone-17-pair-alert-unlocked")
        tab.close()

        tab = edited_status(context, box, lambda data: data["auth"].update(unlocked=False, pin_retry_in=42))
        expect(tab.page.locator("#pin-wait")).to_have_text("Too many wrong PINs: the next try is allowed in 42 s.")
        expect(tab.page.locator("#pin-submit")).to_be_disabled()
        tab.close()
    finally:
        context.close()


# -- unlocking, as the box does it since the API -------------------------------------------------

ONLY_LIT = """([lit, n]) => {
    if (document.getElementById('panel').dataset.pattern !== 'pairing') return false;
    const levels = [...Array(n).keys()].map((i) =>
        parseFloat(document.querySelector(`#panel .led[data-led="${i}"]`).getAttribute('data-level')));
    return levels.every((level, i) => i === lit ? level > 0 : level === 0);
}"""
DARK = """([lit]) => parseFloat(document.querySelector(`#panel .led[data-led="${lit}"]`).getAttribute('data-level')) === 0"""


def test_every_page_sees_a_pending_request_and_the_button_that_blinks(browser, box, phone):
    """A requester, a stranger (both locked) and the owner's unlocked phone, all at once."""
    owner_tab = Tab(phone)
    owner = owner_tab.open()
    unlock_with_pin(owner)
    contexts = [new_context(browser, box), new_context(browser, box, DESKTOP)]  # the stranger on a PC
    try:
        requester_tab, stranger_tab = Tab(contexts[0]), Tab(contexts[1])
        requester, stranger = requester_tab.open(), stranger_tab.open()
        for page in (requester, stranger, owner):
            expect(page.locator("#pair-alert")).to_be_hidden()

        requester.locator("#unlock-pair").click()
        code_shown = requester.locator("#pair-pending .pair-code")
        expect(code_shown).to_have_text(re.compile(r"^\d+$"))
        code = int(code_shown.inner_text())
        assert 1 <= code <= 4
        expect(requester.locator("#pair-pending-text")).to_contain_text(f"Hold Function and press button {code} on the box")
        assert code_shown.evaluate("el => parseFloat(getComputedStyle(el).fontSize)") >= 40  # big and clear
        code_shown.scroll_into_view_if_needed()
        in_viewport(requester, "#pair-pending .pair-code")
        view_shot(requester, "phone-18-requester-press-button-k")
        expect(requester.locator("#pair-alert")).to_be_hidden()  # its own request: no warning

        warning = (f"A browser is asking to unlock: button {code} blinks. "
                   "Only approve it (Function + that button) if that is you.")
        expect(stranger.locator("#pair-alert")).to_have_text(warning)
        expect(owner.locator("#pair-alert")).to_have_text(warning)
        # wherever they are on the page, they see it
        owner.locator("#lock").scroll_into_view_if_needed()
        stranger.locator("#pin").scroll_into_view_if_needed()
        in_viewport(owner, "#pair-alert")
        in_viewport(owner, "#live")
        in_viewport(stranger, "#pair-alert")
        view_shot(stranger, "desktop-18-stranger-sees-the-request")
        view_shot(owner, "phone-18-owner-sees-the-request")

        # the lamp that blinks is the one the requester's page names: lit alone, then dark
        stranger.wait_for_function(ONLY_LIT, arg=[code - 1, 4], timeout=TIMEOUT)
        stranger.wait_for_function(DARK, arg=[code - 1], timeout=TIMEOUT)
        expect(stranger.locator("#panel-pattern")).to_contain_text(f"Lamp {code} blinks")

        # the stranger asks as well: refused, told which button blinks and when to try again
        stranger.locator("#unlock-pair").click()
        expect(stranger.locator("#pair-wait")).to_contain_text(f"button {code} blinks")
        expect(stranger.locator("#pair-wait")).to_contain_text("Try again in")
        expect(stranger.locator("#pair-pending")).to_be_hidden()

        # the requester reloads its page: it still shows its own request (and no warning)
        requester.reload()
        expect(requester.locator(".class-card")).to_have_count(4)
        expect(requester.locator("#pair-pending .pair-code")).to_have_text(str(code))
        expect(requester.locator("#pair-alert")).to_be_hidden()

        # cancelled: no page shows it any more, and nobody got unlocked
        requester.locator("#pair-cancel").click()
        expect(requester.locator("#pair-pending")).to_be_hidden()
        requester.wait_for_timeout(1500)  # polls and the pairing check after it: it stays cancelled
        expect(requester.locator("#pair-pending")).to_be_hidden()
        expect(requester.locator("#banner")).to_be_hidden()  # no "ended before the button was pressed"
        for page in (requester, stranger, owner):
            expect(page.locator("#pair-alert")).to_be_hidden()
        assert api_status(requester)["auth"]["pair"] is None
        expect(requester.locator("#lock-title")).to_have_text("Locked")
        expect(stranger.locator("#lock-title")).to_have_text("Locked")
        requester_tab.close()
        stranger_tab.close()
    finally:
        for context in contexts:
            context.close()
        owner_tab.close()


def test_the_page_says_how_long_the_unlock_lasts_and_lock_locks(page, box):
    unlock_with_pin(page)
    expect(page.locator("#unlock-left")).to_have_text(
        re.compile(r"^Unlocked for (11 h [0-5]?\d|12 h 0) min more \(an unlock lasts 12 h\)\.$"))
    page.locator("#lock").click()
    expect(page.locator("#lock-title")).to_have_text("Locked")
    expect(page.locator("body")).to_have_class(re.compile(r"\blocked\b"))
    for i in range(4):
        expect(teach_buttons(page).nth(i)).to_be_disabled()
    expect(page.locator("#undo")).to_be_disabled()
    expect(page.locator("#pin")).to_be_visible()
    expect(page.locator("#unlock-left")).to_be_hidden()
    page.wait_for_timeout(700)  # the next polls agree
    expect(page.locator("#lock-title")).to_have_text("Locked")
    assert api_status(page)["auth"]["unlocked"] is False
    unlock_with_pin(page)


def burst_taught(page):
    match = re.match(r"(\d+) taught", page.locator("#burst").inner_text())
    return int(match.group(1)) if match else -1


def test_a_hold_shows_the_count_going_up_and_same_picture(page, box):
    unlock_with_pin(page)
    class_id = 3
    select_source(page, "yellow ring")
    before = box.counts()[class_id]
    press_and_hold(page, class_id)
    try:
        expect(page.locator("#burst")).to_have_text(re.compile(r"^\d+ taught"))
        # the same still picture: frames are skipped, and the page says why
        expect(page.locator("#same-picture")).to_be_visible()
        expect(page.locator("#same-picture")).to_have_text("Same picture \u2014 move it a little")
        expect(page.locator("#burst")).to_contain_text("skipped")
        for selector in ("#live", "#answer", "#burst", "#same-picture"):
            in_viewport(page, selector)
        inside_the_card(page, "#same-picture")
        view_shot(page, "phone-19-real-hold-same-picture")
        first = burst_taught(page)
        # a changing picture: the count goes up while the finger stays down
        scenes = ("empty table", "yellow ring")
        for switch in range(12):
            select_source(page, scenes[switch % 2])
            if burst_taught(page) > first:
                break
        page.wait_for_function("([n]) => parseInt(document.getElementById('burst').textContent, 10) > n",
                               arg=[first], timeout=TIMEOUT)
        expect(page.locator("#burst")).to_have_text(re.compile(r"^\d+ taught"))
    finally:
        let_go(page, class_id)
    expect(page.locator("#burst")).to_be_hidden()
    page.locator("#undo").click()
    expect(card(page, class_id).locator(".count")).to_have_text(examples_text(before))


def test_wrong_pins_make_the_page_say_when_to_try_again(browser, own_box):
    """On a box of its own: afterwards this machine must wait before its next PIN there."""
    box = own_box
    context = new_context(browser, box)
    try:
        tab = Tab(context)
        page = tab.open()
        wait = page.locator("#pin-wait")
        for attempt in range(1, 10):
            page.locator("#pin").fill("000000")
            page.locator("#pin-submit").click()
            expect(page.locator("#banner-text")).to_contain_text("rong PIN" if attempt == 1 else "PIN")
            # the box's word that a wait began (the button is also off while a try is on its way)
            if page.locator("#pin-wait").is_visible() or api_status(page)["auth"]["pin_retry_in"] > 0:
                break
            dismiss_banner(page)
        expect(wait).to_be_visible()
        expect(wait).to_have_text(re.compile(r"^Too many wrong PINs: the next try is allowed in \d+ (s|min)\.$"))
        expect(page.locator("#pin-submit")).to_be_disabled()
        expect(page.locator("#lock-title")).to_have_text("Locked")
        dismiss_banner(page)
        wait.scroll_into_view_if_needed()
        in_viewport(page, "#pin-wait")
        view_shot(page, "phone-20-pin-wait")
        tab.close()
    finally:
        context.close()


# -- the examples: gallery, quality, unsure pictures (a box of their own) ----------------------------

def taught_on(served, class_id, scene, n):
    """Teach ``n`` frames of ``scene`` to ``class_id`` from the box side, and wait until they are stored."""
    served.box.select_source(scene)
    before = served.counts()[class_id]
    served.box.loop.teach_next(class_id, n)
    wait_until(lambda: served.counts()[class_id] >= before + n, f"class {class_id + 1} taught {n} more")
    wait_until(lambda: served.box.snapshot().loop.burst is None, "the burst ended")
    served.box.settle()


def wait_until(condition, what, timeout=TIMEOUT / 1000):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited in vain: {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def library_box(model_path, tmp_path_factory):
    """A box whose class 1 has 60 red balls and 3 blue boxes (a mistake), class 2 blue boxes, class 3 stripes."""
    with served_box(model_path, tmp_path_factory.mktemp("library-state")) as served:
        taught_on(served, 0, "red ball", 60)
        taught_on(served, 0, "blue box", 3)
        taught_on(served, 1, "blue box", 8)
        taught_on(served, 2, "green stripes", 4)
        served.box.select_source("red ball")  # a view it is sure of: the inbox keeps only what the tests plant
        yield served


@pytest.fixture
def library_page(browser, library_box):
    context = new_context(browser, library_box)
    tab = Tab(context)
    page = tab.open()
    unlock_with_pin(page)
    dismiss_banner(page)
    yield tab
    tab.close()
    context.close()


def thumbs(page):
    return page.locator("#gallery-grid .thumb")


def open_examples(page, view="pictures"):
    """Choose the examples card's tab ``view`` and scroll its top to just under the phone's sticky bar."""
    page.locator(f"#tab-{view}").click()
    page.evaluate("(id) => document.getElementById(id).scrollIntoView({block: 'start'})", f"tab-{view}")


def stored_ids(served, class_id):
    return [e.id for e in served.box.examples(class_id, limit=500).examples]


def shown_ids(page):
    return [int(i) for i in thumbs(page).evaluate_all("items => items.map((li) => li.dataset.id)")]


def test_a_locked_phone_sees_the_counts_but_no_pictures(browser, library_box):
    context = new_context(browser, library_box)
    try:
        tab = Tab(context)
        page = tab.open()
        page.locator("#library").scroll_into_view_if_needed()
        expect(page.locator("#library-summary")).to_contain_text("75 examples kept:")
        expect(page.locator("#pictures-view .locked-hint")).to_be_visible()
        expect(page.locator("#pictures-view .locked-hint")).to_contain_text("unlock this phone")
        expect(page.locator('#gallery-classes .chip[data-class="0"] .chip-count')).to_have_text("63")
        page.wait_for_timeout(1000)  # polls went by: still no picture asked for or shown
        expect(thumbs(page)).to_have_count(0)
        expect(page.locator("#gallery-bar")).to_be_hidden()
        no_horizontal_scroll(page, 360)
        view_shot(page, "phone-30-examples-locked")
        open_examples(page, "quality")  # numbers only: a locked phone may see them
        expect(page.locator("#quality-list .quality-row")).to_have_count(4)
        expect(page.locator("#confusion-locked")).to_be_visible()
        expect(page.locator("#confusion .cell-button")).to_have_count(0)
        open_examples(page, "inbox")
        expect(page.locator("#inbox-view .locked-hint")).to_be_visible()
        expect(page.locator("#inbox-list .doubt")).to_have_count(0)
        asked = [url for url in tab.requests if "/api/examples" in url or "/api/doubtful" in url]
        assert asked == [], f"a locked page asked for pictures: {asked}"
        tab.close()
    finally:
        context.close()


def test_the_gallery_loads_a_page_at_a_time_and_deletes_what_is_selected(library_page, library_box):
    tab, page, served = library_page, library_page.page, library_box
    open_examples(page)
    expect(thumbs(page).nth(47)).to_be_attached()  # the first page of class 1's 63, newest first
    shown = shown_ids(page)
    assert len(shown) in (48, 63) and shown == stored_ids(served, 0)[:len(shown)]
    assert thumbs(page).locator("img").evaluate_all("imgs => imgs.every((img) => img.loading === 'lazy')")
    page.wait_for_function("() => document.querySelector('#gallery-grid .thumb img').naturalWidth > 0")
    expect(page.locator("#gallery-caption")).to_contain_text("\u201cClass 1\u201d: 63 examples, newest first")
    no_horizontal_scroll(page, 360)
    view_shot(page, "phone-31-gallery")
    # scrolled down, the next page comes by itself, from where the first one ended
    thumbs(page).last.scroll_into_view_if_needed()
    expect(thumbs(page)).to_have_count(63)
    expect(page.locator("#gallery-more")).to_be_hidden()
    assert shown_ids(page) == stored_ids(served, 0)
    asked = [url.split("?", 1)[1] for url in tab.requests if "/api/examples?" in url]
    assert asked[:2] == ["class=0&limit=48", f"class=0&before={stored_ids(served, 0)[47]}&limit=48"], asked
    assert all(query.endswith("limit=48") for query in asked), f"never more than a page at a time: {asked}"

    page.locator("#gallery-grid").scroll_into_view_if_needed()
    first, second = thumbs(page).nth(0), thumbs(page).nth(1)
    ids = shown_ids(page)[:2]
    first.click()
    second.click()
    expect(first).to_have_attribute("aria-selected", "true")
    expect(page.locator("#gallery-bar")).to_be_visible()
    expect(page.locator("#gallery-selected")).to_have_text("2 selected")
    in_viewport(page, "#gallery-delete")
    view_shot(page, "phone-32-gallery-two-selected")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.route("**/api/status", lambda route: route.abort())  # the counts come with the box's answer itself
    try:
        page.locator("#gallery-delete").click()
        expect(card(page, 0).locator(".count")).to_have_text("61 examples")
    finally:
        page.unroute("**/api/status")
    assert asked and asked[0].startswith("Delete 2 examples of \u201cClass 1\u201d?"), asked
    expect(page.locator("#banner-text")).to_have_text("Deleted 2 examples of \u201cClass 1\u201d.")
    expect(page.locator('#gallery-classes .chip[data-class="0"] .chip-count')).to_have_text("61")
    expect(thumbs(page)).to_have_count(61)
    assert not set(ids) & set(shown_ids(page))
    expect(page.locator("#gallery-bar")).to_be_hidden()
    assert served.counts()[0] == 61 and not set(ids) & set(stored_ids(served, 0))
    dismiss_banner(page)
    view_shot(page, "phone-33-gallery-after-delete")


def test_moving_a_picture_files_it_under_another_class(library_page, library_box):
    page, served = library_page.page, library_box
    open_examples(page)
    expect(thumbs(page)).not_to_have_count(0)
    before = served.counts()
    moved = shown_ids(page)[0]
    thumbs(page).nth(0).click()
    expect(page.locator("#gallery-selected")).to_have_text("1 selected")
    expect(page.locator('#gallery-target option[value="0"]')).to_be_disabled()  # not to its own class
    page.locator("#gallery-target").select_option("3")
    page.locator("#gallery-move").click()
    expect(page.locator("#banner-text")).to_have_text("Moved 1 example to \u201cClass 4\u201d.")
    expect(card(page, 0).locator(".count")).to_have_text(examples_text(before[0] - 1))
    expect(card(page, 3).locator(".count")).to_have_text(examples_text(before[3] + 1))
    assert moved not in shown_ids(page)
    dismiss_banner(page)
    page.locator('#gallery-classes .chip[data-class="3"]').click()
    expect(page.locator('#gallery-classes .chip[data-class="3"]')).to_have_attribute("aria-pressed", "true")
    expect(thumbs(page)).to_have_count(before[3] + 1)
    assert moved in shown_ids(page) and stored_ids(served, 3)[0] == moved
    view_shot(page, "phone-34-gallery-moved-to-class-4")
    # put it back for the tests after this one
    page.locator(f'#gallery-grid .thumb[data-id="{moved}"]').click()
    page.locator("#gallery-target").select_option("0")
    page.locator("#gallery-move").click()
    expect(card(page, 3).locator(".count")).to_have_text(examples_text(before[3]))
    assert served.counts() == before


def test_the_quality_view_and_a_mix_up_opening_its_pictures(library_page, library_box):
    page, served = library_page.page, library_box
    open_examples(page, "quality")
    rows = page.locator("#quality-list .quality-row")
    expect(rows).to_have_count(4)
    quality = served.box.quality()
    first = quality.classes[0]
    assert first.confused_with == 1, "the blue boxes taught to class 1 should be taken for class 2"
    expect(rows.nth(0).locator(".q-score")).to_have_text(f"{round(first.loo_accuracy * 100)}%")
    expect(rows.nth(0).locator(".q-mistaken")).to_have_text("mistaken for \u201cClass 2\u201d")
    expect(rows.nth(0).locator(".q-hint")).to_have_text(first.hint)
    expect(rows.nth(3).locator(".q-score")).to_have_text("\u2013")  # nothing taught: nothing to judge
    mistakes = quality.cells[(0, 1)]
    cell = page.locator('#confusion .cell-button[data-taught="0"][data-answered="1"]')
    expect(cell).to_have_text(str(len(mistakes)))
    no_horizontal_scroll(page, 360)
    view_shot(page, "phone-35-quality")
    page.locator("#confusion").scroll_into_view_if_needed()
    view_shot(page, "phone-35-quality-mix-ups")

    cell.click()  # the pictures behind the number: the blue boxes under class 1
    expect(page.locator("#tab-pictures")).to_have_attribute("aria-selected", "true")
    expect(thumbs(page)).to_have_count(len(mistakes))
    assert sorted(shown_ids(page)) == sorted(mistakes)
    expect(page.locator("#gallery-caption")).to_contain_text(
        "\u201cClass 1\u201d examples the box would take for \u201cClass 2\u201d")
    expect(page.locator("#gallery-back")).to_be_visible()
    for i in range(len(mistakes)):
        thumbs(page).nth(i).click()
    expect(page.locator("#gallery-target")).to_have_value("1")  # what they were taken for
    view_shot(page, "phone-36-mix-up-pictures-selected")
    before = served.counts()
    page.locator("#gallery-move").click()
    expect(card(page, 1).locator(".count")).to_have_text(examples_text(before[1] + len(mistakes)))
    expect(thumbs(page)).to_have_count(0)
    open_examples(page, "quality")
    expect(rows.nth(0).locator(".q-score")).to_have_text("100%")
    expect(page.locator('#confusion .cell-button[data-taught="0"][data-answered="1"]')).to_have_count(0)
    page.locator("#tab-pictures").click()
    page.locator("#gallery-back").click()
    expect(page.locator("#gallery-caption")).to_contain_text("\u201cClass 1\u201d:")


def plant_doubtful(served, ago=0.0):
    """A frame the box could not place, kept in its inbox as the loop keeps one (its picture a stored crop).

    ``ago``: kept that many seconds before now.
    """
    loop = served.box.loop
    picture = served.box.example_crop(stored_ids(served, 2)[0])
    embedding = np.random.default_rng(7).random(loop.head.dim).astype(np.float32)
    prediction = dataclasses.replace(loop.head.predict(embedding), status="unknown", class_id=None)
    for _ in range(50):  # the loop may have kept one of its own a moment ago (min_interval)
        served.box.inbox.clear()
        frame = served.box.inbox.consider(time.monotonic() - ago, prediction, embedding, picture)
        if frame is not None:
            return frame, picture
        time.sleep(0.1)
    pytest.fail("the inbox did not take the planted frame")


def test_an_unsure_picture_is_filed_with_one_tap(library_page, library_box):
    page, served = library_page.page, library_box
    frame, picture = plant_doubtful(served)
    expect(page.locator("#inbox-count")).to_have_text("1")
    open_examples(page, "inbox")
    item = page.locator(f'#inbox-list .doubt[data-id="{frame}"]')
    expect(item).to_be_visible()
    expect(item.locator(".doubt-question")).to_contain_text("Not like anything it was taught")
    page.wait_for_function("([id]) => document.querySelector(`.doubt[data-id=\"${id}\"] img`).naturalWidth > 0",
                           arg=[frame])
    expect(item.locator(".file-as")).to_have_count(4)
    no_horizontal_scroll(page, 360)
    view_shot(page, "phone-37-unsure-pictures")
    before = served.counts()
    item.locator('.file-as[data-class="2"]').click()
    expect(page.locator("#banner-text")).to_have_text("Taught \u201cClass 3\u201d with that picture.")
    expect(item).to_have_count(0)
    expect(card(page, 2).locator(".count")).to_have_text(examples_text(before[2] + 1))
    expect(page.locator("#inbox-empty")).to_be_visible()
    expect(page.locator("#inbox-count")).to_be_hidden()
    served.box.settle()
    newest = served.box.examples(2, limit=1).examples[0]
    assert newest.source == "inbox" and served.box.example_crop(newest.id) == picture
    view_shot(page, "phone-38-unsure-filed")


def test_an_unsure_picture_that_shows_none_of_the_classes_is_thrown_away(library_page, library_box):
    page, served = library_page.page, library_box
    frame, _ = plant_doubtful(served, ago=130)
    expect(page.locator("#inbox-count")).to_have_text("1")
    open_examples(page, "inbox")
    item = page.locator(f'#inbox-list .doubt[data-id="{frame}"]')
    expect(item).to_be_visible()
    expect(item.locator(".doubt-age")).to_have_text("2 min ago")
    throw = item.locator(".throw-away")
    expect(throw).to_have_text("None of these: throw it away")
    page.wait_for_function("([id]) => document.querySelector(`.doubt[data-id=\"${id}\"] img`).naturalWidth > 0",
                           arg=[frame])
    no_horizontal_scroll(page, 360)
    item.evaluate("(el) => el.scrollIntoView({block: 'end'})")  # the whole item, above the bottom edge
    in_viewport(page, f'#inbox-list .doubt[data-id="{frame}"] .throw-away')
    view_shot(page, "phone-39-unsure-picture-to-throw-away")
    before = served.counts()
    throw.click()
    expect(page.locator("#banner-text")).to_have_text("Thrown away: the box learned nothing from that picture.")
    expect(item).to_have_count(0)
    expect(page.locator("#inbox-empty")).to_be_visible()
    expect(page.locator("#inbox-count")).to_be_hidden()
    assert served.box.doubtful() == [] and served.counts() == before
    for i, n in enumerate(before):
        expect(card(page, i).locator(".count")).to_have_text(examples_text(n))


def test_locking_takes_the_pictures_off_the_page(library_page, library_box):
    page = library_page.page
    open_examples(page)
    expect(thumbs(page)).not_to_have_count(0)
    page.locator("#lock").click()
    expect(page.locator("#lock-title")).to_have_text("Locked")
    expect(thumbs(page)).to_have_count(0)
    expect(page.locator("#pictures-view .locked-hint")).to_be_visible()
    unlock_with_pin(page)
    open_examples(page)
    expect(thumbs(page)).not_to_have_count(0)


def test_the_examples_on_a_desktop(browser, library_box):
    context = new_context(browser, library_box, DESKTOP)
    try:
        tab = Tab(context)
        page = tab.open()
        unlock_with_pin(page)
        dismiss_banner(page)
        open_examples(page)
        # a page of 48, and on a tall screen perhaps the next one at once (its end is in view)
        page.wait_for_function("document.querySelectorAll('#gallery-grid .thumb').length >= 48")
        no_horizontal_scroll(page, 1280)
        library = page.locator("#library").bounding_box()
        teach_col = page.locator(".col-teach").bounding_box()
        assert library["x"] >= teach_col["x"] - 1, "the examples sit in the right-hand column"
        # the keyboard: the grid is one stop of Tab, the arrows move in it, Space selects
        expect(page.locator("#gallery-grid .thumb[tabindex='0']")).to_have_count(1)
        thumbs(page).nth(0).focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press(" ")
        expect(thumbs(page).nth(1)).to_have_attribute("aria-selected", "true")
        expect(thumbs(page).nth(0)).to_have_attribute("aria-selected", "false")
        columns = page.evaluate("""() => { const items = [...document.querySelectorAll('#gallery-grid .thumb')];
            return items.filter((li) => li.offsetTop === items[0].offsetTop).length; }""")
        assert columns > 4, f"{columns} columns on a desktop"
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        expect(thumbs(page).nth(1 + columns)).to_have_attribute("aria-selected", "true")
        assert page.evaluate("document.activeElement.dataset.id") == str(shown_ids(page)[1 + columns])
        expect(page.locator("#gallery-selected")).to_have_text("2 selected")
        view_shot(page, "desktop-39-examples")
        page.locator("#gallery-unselect").click()
        expect(page.locator("#gallery-bar")).to_be_hidden()
        tab.close()
    finally:
        context.close()


# -- the model: switching it on the phone (a box of its own, finding its models in a folder) -------------

MODEL_MIRROR = REPO.parent / "shared" / "models"  # every known model
DEFAULT_MODEL = "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
SMALL_MODEL = "mobilenet_v1_0.5_160_quant_embedding_extractor.tflite"


@pytest.fixture(scope="module")
def model_box(model_path, tmp_path_factory):
    """A box whose model folder holds every known model; three classes taught (16 examples)."""
    with served_box(model_path, tmp_path_factory.mktemp("model-state"), model_dir=MODEL_MIRROR) as served:
        taught_on(served, 0, "red ball", 6)
        taught_on(served, 1, "blue box", 6)
        taught_on(served, 2, "green stripes", 4)
        served.box.select_source("red ball")
        yield served
        assert served.box.switcher.wait(60), "a model switch was still going on"


def open_model_card(page):
    page.evaluate("document.getElementById('model-card').scrollIntoView({block: 'start'})")


def test_a_locked_phone_sees_the_model_and_is_told_to_unlock_to_change_it(browser, model_box):
    context = new_context(browser, model_box)
    try:
        tab = Tab(context)
        page = tab.open()
        open_model_card(page)
        now = re.compile(r"^The box learns with mobilenet_v1_1\.0_224 \(1024-d\)")
        expect(page.locator("#model-now")).to_have_text(now)
        expect(page.locator("#model-card .locked-hint")).to_be_visible()
        expect(page.locator("#model-card .locked-hint")).to_contain_text("unlock this phone to change the model")
        expect(page.locator(f'#model-choice option[value="{SMALL_MODEL}"]')).to_be_enabled()  # listed, facts only
        expect(page.locator("#model-choice")).to_be_disabled()
        expect(page.locator("#model-switch")).to_be_disabled()
        no_horizontal_scroll(page, 360)
        view_shot(page, "phone-40-model-locked")
        tab.close()
    finally:
        context.close()


def test_switching_the_model_on_the_phone_shows_its_progress_then_the_new_model(browser, model_box):
    served = model_box
    context = new_context(browser, served)
    stuck = threading.Event()
    try:
        tab = Tab(context)
        page = tab.open()
        unlock_with_pin(page)
        dismiss_banner(page)
        open_model_card(page)
        options = page.locator("#model-choice option")
        expect(options).to_have_count(3)
        expect(page.locator(f'#model-choice option[value="{DEFAULT_MODEL}"]')).to_be_disabled()  # in use
        expect(page.locator(f'#model-choice option[value="{DEFAULT_MODEL}"]')).to_contain_text("(in use)")
        expect(page.locator("#model-fetch")).to_be_hidden()  # every model is on this box
        page.locator("#model-choice").select_option(SMALL_MODEL)
        expect(page.locator("#model-switch")).to_be_enabled()
        before = served.counts()
        assert before == [6, 6, 4, 0]
        # the box's writer is kept busy, so the switch waits after embedding: its progress stays on screen
        served.box.loop.keeper.writer.submit(lambda library: stuck.wait(60))
        asked = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
        page.locator("#model-switch").click()
        progress = page.locator("#model-progress-text")
        expect(progress).to_have_text(re.compile(r"^Learning again with mobilenet_v1_0\.5_160: \d+ of 16$"))
        assert asked == ["Switch to mobilenet_v1_0.5_160? Every example is learned again with the new model; "
                         "the box keeps answering meanwhile."], asked
        expect(progress).to_have_text("Learning again with mobilenet_v1_0.5_160: 16 of 16")
        expect(page.locator("#model-switch")).to_be_disabled()
        expect(page.locator("#model-now")).to_contain_text("mobilenet_v1_1.0_224 (1024-d)")  # the old one answers
        expect(page.locator("#library-summary")).to_contain_text(
            "Learning them again with mobilenet_v1_0.5_160: 16 of 16.")
        width = page.locator("#model-progress-bar").evaluate("(el) => el.style.width")
        assert width == "100%", width
        no_horizontal_scroll(page, 360)
        open_model_card(page)
        view_shot(page, "phone-41-model-switching")
        stuck.set()
        expect(page.locator("#model-result")).to_have_text(
            "Now using mobilenet_v1_0.5_160: every example was learned again with it.")
        expect(page.locator("#model-progress")).to_be_hidden()
        now = re.compile(r"^The box learns with mobilenet_v1_0\.5_160 \(512-d\)")
        expect(page.locator("#model-now")).to_have_text(now)
        expect(page.locator("#model")).to_have_text(f"{SMALL_MODEL} (512-d)")  # the details card follows
        expect(page.locator(f'#model-choice option[value="{SMALL_MODEL}"]')).to_contain_text("(in use)")
        for i, n in enumerate(before):
            expect(card(page, i).locator(".count")).to_have_text(examples_text(n))
        assert served.counts() == before and api_status(page)["model"] == SMALL_MODEL
        open_model_card(page)
        view_shot(page, "phone-42-model-switched")
        select_source(page, "blue box")  # the new model knows what was taught with the old one
        expect(page.locator("#answer")).to_have_text(names_class("Class 2"))
        tab.close()
    finally:
        stuck.set()
        context.close()


def test_an_export_downloaded_on_the_phone_imports_back_and_a_file_too_big_is_not_sent(browser, model_box, tmp_path):
    served = model_box
    context = new_context(browser, served, {**PHONE, "accept_downloads": True})
    try:
        tab = Tab(context)
        page = tab.open()
        unlock_with_pin(page)
        dismiss_banner(page)
        before = served.counts()
        page.locator("#export").scroll_into_view_if_needed()
        with page.expect_download() as download:
            page.locator("#export").click()
        assert download.value.suggested_filename == "teachbox-examples.zip"
        saved = tmp_path / "teachbox-examples.zip"
        download.value.save_as(saved)
        assert saved.read_bytes()[:4] == b"PK\x03\x04"
        # a file past what the page takes is refused on the phone, before a byte is sent
        most = int(page.locator("#import").get_attribute("data-max-bytes"))
        assert most == 128 << 20
        page.locator("#import").evaluate("(el) => { el.dataset.maxBytes = '1000'; }")  # a small limit to try it
        imports = []
        page.on("request", lambda request: imports.append(request.url) if "/api/import" in request.url else None)
        page.locator("#import").set_input_files(str(saved))
        expect(page.locator("#banner-text")).to_contain_text("the page takes files of at most 1 KB. Nothing was changed.")
        expect(page.locator("#banner-text")).to_contain_text("teachbox import FILE")
        assert imports == []
        view_shot(page, "phone-43-import-too-big")
        dismiss_banner(page)
        page.locator("#import").evaluate("(el, most) => { el.dataset.maxBytes = String(most); }", most)
        asked = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
        page.locator("#import").set_input_files(str(saved))
        expect(page.locator("#banner-text")).to_have_text(
            "Imported \u201cteachbox-examples.zip\u201d: Class 1 (6), Class 2 (6), Class 3 (4).")
        assert asked and asked[0].startswith("Import \u201cteachbox-examples.zip\u201d?"), asked
        assert len(imports) == 1
        assert served.counts() == before
        for i, n in enumerate(before):
            expect(card(page, i).locator(".count")).to_have_text(examples_text(n))
        tab.close()
    finally:
        context.close()


# -- "unknown" for a thing never taught ---------------------------------------------------------

RECORD_ANSWERS = """() => {
    window.__answers = [];
    const answer = document.getElementById('answer');
    window.__answers.push(answer.textContent);
    new MutationObserver(() => window.__answers.push(answer.textContent))
        .observe(answer, {childList: true, characterData: true, subtree: true});
}"""


def test_a_thing_never_taught_is_answered_unknown(browser, model_path, coil100, tmp_path):
    """Real photos: three objects taught by holding their buttons while they turn; a fourth never taught.

    Everything the answer card shows while the fourth is in view is recorded: no taught
    class may appear, the LEDs stay dark, and the frame waits in the inbox.
    """
    scenes = tmp_path / "turntable"
    scenes.mkdir()
    objects = sorted(p.name for p in coil100.iterdir() if p.is_dir())[:4]  # three taught, the last never
    for name in objects:
        (scenes / name).symlink_to(coil100 / name)
    taught, stranger = objects[:3], objects[3]
    with served_box(model_path, tmp_path / "state", camera=f"folder:{scenes}") as served:
        context = new_context(browser, served)
        try:
            page = context.new_page()
            page.goto(served.url)
            unlock_with_pin(page)
            for class_id, name in enumerate(taught):
                select_source(page, name)
                press_and_hold(page, class_id)
                try:
                    wait_for_count(page, class_id, 6)  # the thing turns under the camera meanwhile
                finally:
                    let_go(page, class_id)
            served.box.settle()  # stored, and the head fitted to it
            for class_id, name in enumerate(taught):
                select_source(page, name)
                expect(page.locator("#answer")).to_have_text(names_class(f"Class {class_id + 1}"))

            select_source(page, stranger)
            expect(page.locator("#answer-card")).to_have_attribute("data-state", "unknown")
            page.evaluate(RECORD_ANSWERS)
            page.wait_for_timeout(4000)  # the whole turn of the object goes by
            shown = set(page.evaluate("window.__answers"))
            assert shown == {"Unknown"}, f"a thing never taught was shown as {shown}"
            expect(page.locator("#answer-hint")).to_have_text("not like anything it was taught")
            expect(page.locator("#confidence")).to_be_hidden()
            page.wait_for_function(LEDS_ARE, arg=[-1, 4], timeout=TIMEOUT)  # no class LED lit
            assert api_status(page)["state"] == "unknown"
            view_shot(page, "phone-44-unknown")
            doubtful = page.request.get("/api/doubtful").json()
            assert any(f["reason"] == "unknown" for f in doubtful["frames"]), doubtful
            desk = new_context(browser, served, DESKTOP)  # a second browser, locked: it sees the same
            try:
                other = desk.new_page()
                other.goto(served.url)
                expect(other.locator("#answer")).to_have_text("Unknown")
                view_shot(other, "desktop-44-unknown")
            finally:
                desk.close()

            select_source(page, taught[0])  # and a taught thing is named again
            expect(page.locator("#answer")).to_have_text(names_class("Class 1"))
        finally:
            context.close()


# -- what the box looks at: landmarks over the live view, "No hand", the chooser ----------------------

HAND_SCENE = "hand"  # the folder camera's sub-folders: one still frame each (every frame finds the same look)
EMPTY_SCENE = "nothing"
WIDE_FRAME = (180, 320)  # (height, width): letterboxed in the square live view, so the mapping shows
WIDE_SIZE = (WIDE_FRAME[1], WIDE_FRAME[0])  # (width, height), as an image has it
LANDMARK_MODELS = ("palm_detection_full.tflite", "hand_landmark_full.tflite")


def still_scenes(folder, frames):
    """A folder camera's sources: ``frames`` maps a sub-folder's name to its one picture (an RGB array)."""
    from PIL import Image

    for name, frame in frames.items():
        (folder / name).mkdir(parents=True)
        Image.fromarray(frame).save(folder / name / "frame.png")
    return f"folder:{folder}"


def ball_frame(centre=(110, 80), radius=45):
    """A red disc on a plain grey-brown table (the stub finds a "hand" over the disc, nothing on the table)."""
    height, width = WIDE_FRAME
    yy, xx = np.mgrid[0:height, 0:width]
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = (120, 110, 95)
    frame[(xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius ** 2] = (220, 40, 40)
    return frame


def table_frame():
    height, width = WIDE_FRAME
    return np.full((height, width, 3), (120, 110, 95), np.uint8)


@pytest.fixture(scope="module")
def hand_box(model_path, tmp_path_factory):
    """A box looking at hands through the stub finder (tests/test_web_source.py) at two still frames.

    Switching to pictures opens the real MobileNet; back to the hand, the stub again; a face's
    models are "missing" as the real landmarker says so (the fetch command).
    """
    from device.errors import ModelMissingError
    from test_web_source import open_source_with_stub_hands, stub_hand_source

    state = tmp_path_factory.mktemp("hand-state")
    scenes = {HAND_SCENE: ball_frame(), EMPTY_SCENE: table_frame()}
    camera = still_scenes(tmp_path_factory.mktemp("hand-scenes"), scenes)
    with pytest.MonkeyPatch.context() as patch:
        open_source_with_stub_hands(patch, face=ModelMissingError(
            f"model file '{state}/face_landmark.tflite' does not exist. {FACE_FETCH}"))
        with served_box(model_path, state, camera=camera, embedder=stub_hand_source()) as served:
            served.box.select_source(HAND_SCENE)
            yield served


FACE_FETCH = "Fetch it with: teachbox fetch-model --model-dir /opt/teachbox/models --name face_landmark.tflite"

PIXELS_AT = """([points]) => {
    const canvas = document.getElementById('live-marks');
    const ctx = canvas.getContext('2d');
    const sx = canvas.width / canvas.clientWidth, sy = canvas.height / canvas.clientHeight;
    return points.map(([x, y]) => Array.from(ctx.getImageData(Math.round(x * sx), Math.round(y * sy), 1, 1).data));
}"""
INK_ON_CANVAS = """() => {
    const canvas = document.getElementById('live-marks');
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let ink = 0;
    for (let i = 3; i < data.length; i += 4) { if (data[i]) { ink += 1; } }
    return ink;
}"""


def picture_rect(page, frame_size):
    """Where the live image shows a frame of ``frame_size`` (width, height) in its box (object-fit: contain)."""
    canvas = page.locator("#live-marks").bounding_box()
    image = page.locator("#live").bounding_box()
    natural = frame_size
    assert abs(canvas["width"] - image["width"]) < 1 and abs(canvas["height"] - image["height"]) < 1, \
        f"the canvas ({canvas}) does not lie over the live image ({image})"
    scale = min(canvas["width"] / natural[0], canvas["height"] / natural[1])
    width, height = natural[0] * scale, natural[1] * scale
    return (canvas["width"] - width) / 2, (canvas["height"] - height) / 2, width, height, canvas, natural


def assert_landmarks_drawn(page, look, frame_size):
    """Every landmark of ``look`` is a dot on the canvas where the frame shows that point; the bands stay clear."""
    page.wait_for_function("(n) => document.getElementById('live-marks').dataset.points === String(n)",
                           arg=len(look["points"]), timeout=TIMEOUT)
    page.wait_for_function("([w, h]) => { const i = document.getElementById('live'); "
                           "return i.naturalWidth === w && i.naturalHeight === h; }", arg=list(frame_size),
                           timeout=TIMEOUT)  # the camera's frame as it is, never drawn on by the box
    x0, y0, width, height, canvas, natural = picture_rect(page, frame_size)
    expected = [(x0 + x * width, y0 + y * height) for x, y in look["points"]]
    pixels = page.evaluate(PIXELS_AT, [expected])
    dots = [rgba for rgba in pixels if rgba[3] > 200 and rgba[0] > 180 and rgba[1] > 150 and rgba[2] < 110]
    assert len(dots) == len(expected), \
        f"not every landmark is a dot where it belongs ({len(dots)} of {len(expected)}): {pixels}"
    # no ink outside the picture's rectangle (the letterbox bands) nor far from the hand
    far = [(1, 1), (canvas["width"] - 2, canvas["height"] - 2)]
    if y0 > 4:
        far += [(canvas["width"] / 2, y0 / 2), (canvas["width"] / 2, canvas["height"] - y0 / 2)]
    assert all(rgba[3] == 0 for rgba in page.evaluate(PIXELS_AT, [far])), "ink outside the hand"
    return x0, y0, width, height, natural


def test_the_landmarks_are_drawn_over_the_live_view_where_the_hand_is(browser, hand_box):
    served = hand_box
    context = new_context(browser, served)
    try:
        tab = Tab(context)
        page = tab.open()
        served.box.select_source(HAND_SCENE)
        expect(page.locator("#answer-card")).not_to_have_attribute("data-state", "absent")
        look = api_status(page)["look"]
        assert look["kind"] == "hand" and len(look["points"]) == 21
        x0, y0, width, height, natural = assert_landmarks_drawn(page, look, WIDE_SIZE)
        assert y0 > 10 and x0 < 1  # a wide frame in the square view: bands above and below, the points mapped inside
        expect(page.locator("#live-marks")).to_have_attribute("data-kind", "hand")
        no_horizontal_scroll(page, 360)
        view_shot(page, "phone-50-hand-landmarks")
        page.locator(".live-card").screenshot(path=str(ARTIFACTS / "phone-50-hand-landmarks-live.png"))

        served.box.select_source(EMPTY_SCENE)  # nothing to find: the card says so and the canvas is cleared
        expect(page.locator("#answer")).to_have_text("No hand")
        expect(page.locator("#answer-card")).to_have_attribute("data-state", "absent")
        expect(page.locator("#answer-hint")).to_have_text("show a hand to the camera")
        expect(page.locator("#confidence")).to_be_hidden()
        expect(page.locator("#live-marks")).to_have_attribute("data-points", "0")
        assert page.evaluate(INK_ON_CANVAS) == 0
        inside_the_card(page, "#answer-hint")
        view_shot(page, "phone-52-no-hand")

        served.box.select_source(HAND_SCENE)  # and back: drawn again, also after the window changes size
        assert_landmarks_drawn(page, look, WIDE_SIZE)
        page.set_viewport_size({"width": 1280, "height": 800})
        page.wait_for_function("() => document.getElementById('live-marks').clientWidth > 300", timeout=TIMEOUT)
        assert_landmarks_drawn(page, look, WIDE_SIZE)
        view_shot(page, "desktop-53-hand-landmarks")
        tab.close()
    finally:
        served.box.select_source(HAND_SCENE)
        context.close()


def test_looks_at_is_chosen_on_an_unlocked_phone_and_each_source_keeps_its_classes(browser, hand_box):
    served = hand_box
    context = new_context(browser, served)
    try:
        tab = Tab(context)
        page = tab.open()
        served.box.select_source(HAND_SCENE)
        choices = page.locator("#looks-choices input")
        page.evaluate("document.getElementById('looks-card').scrollIntoView({block: 'start'})")
        expect(page.locator("#looks-choices .look-choice")).to_have_count(4)
        expect(page.locator("#looks-choices .look-choice")).to_have_text(["Picture", "Hand", "Face", "Body pose"])
        expect(page.locator('#looks-choices input[value="hand"]')).to_be_checked()
        for i in range(4):
            expect(choices.nth(i)).to_be_disabled()  # locked: seen, not changed
        expect(page.locator("#looks-card .locked-hint")).to_be_visible()
        expect(page.locator("#looks-now")).to_contain_text("The box looks at hands")
        expect(page.locator("#model-pictures")).to_be_visible()  # the model is for pictures
        expect(page.locator("#model-choice")).to_be_disabled()
        no_horizontal_scroll(page, 360)
        view_shot(page, "phone-54-looks-at-locked")

        unlock_with_pin(page)
        dismiss_banner(page)
        for i in range(4):
            expect(choices.nth(i)).to_be_enabled()
        expect(page.locator("#model-choice")).to_be_disabled()  # unlocked too: not while it looks at hands
        expect(page.locator("#model-switch")).to_be_disabled()
        expect(page.locator("#model-now")).to_have_text("The model is what the box sees pictures with; "
                                                        "it looks at hands now.")
        open_model_card(page)
        view_shot(page, "phone-57-model-for-pictures")
        teach(page, 0, HAND_SCENE)  # a hold on the phone teaches the hand's class 1
        hand_counts = served.counts()
        assert hand_counts[0] >= 1

        page.evaluate("document.getElementById('looks-card').scrollIntoView({block: 'start'})")
        page.locator('#looks-choices .look-choice[data-source="picture"]').click()
        expect(page.locator("#banner-text")).to_contain_text("Now looking at pictures. Each keeps its own classes")
        expect(page.locator('#looks-choices input[value="picture"]')).to_be_checked()
        expect(page.locator("#looks-now")).to_have_text("The box looks at the whole picture.")
        expect(page.locator("#live-marks")).to_have_attribute("data-points", "0")  # pictures have no landmarks
        expect(page.locator("#model-pictures")).to_be_hidden()
        expect(page.locator("#model-choice")).to_be_enabled()
        for i in range(4):
            expect(card(page, i).locator(".count")).to_have_text("0 examples")  # the pictures' own classes
        assert served.box.source == "picture"
        expect(page.locator("#answer")).to_have_text("Nothing learned yet")  # not "No hand": pictures have no hands
        page.wait_for_function("() => { const i = document.getElementById('live'); "
                               "return i.classList.contains('has-frame') && i.complete && i.naturalWidth > 0; }",
                               timeout=TIMEOUT)
        view_shot(page, "phone-55-looks-at-picture")
        teach(page, 2, EMPTY_SCENE)  # pictures learn from a table too (a hand source never does)
        picture_counts = served.counts()
        assert picture_counts[2] >= 1 and sum(picture_counts) == picture_counts[2]

        page.evaluate("document.getElementById('looks-card').scrollIntoView({block: 'start'})")
        page.locator('#looks-choices .look-choice[data-source="hand"]').click()
        expect(page.locator('#looks-choices input[value="hand"]')).to_be_checked()
        for i, n in enumerate(hand_counts):  # the hand's examples came back, the pictures' stay with pictures
            expect(card(page, i).locator(".count")).to_have_text(examples_text(n))
        assert served.counts() == hand_counts
        expect(page.locator("#answer")).to_have_text("No hand")  # the camera still shows the table
        select_source(page, HAND_SCENE)
        expect(page.locator("#live-marks")).to_have_attribute("data-points", "21")

        page.locator('#looks-choices .look-choice[data-source="face"]').click()  # refused: the box says why
        expect(page.locator("#banner")).to_have_class(re.compile(r"\bbanner-error\b"))
        expect(page.locator("#banner-text")).to_contain_text(FACE_FETCH)
        expect(page.locator('#looks-choices input[value="hand"]')).to_be_checked()
        assert served.box.source == "hand" and served.counts() == hand_counts
        view_shot(page, "phone-56-looks-at-refused")

        page.locator("#lock").click()
        expect(page.locator("body")).to_have_class(re.compile(r"\blocked\b"))
        for i in range(4):
            expect(choices.nth(i)).to_be_disabled()
        tab.close()
    finally:
        if served.box.source != "hand":
            served.box.switch_source("hand")
        context.close()


def real_hand_source(model_path):
    """The real hand source from the model mirror, or a skip saying what is missing."""
    from test_web_source import needs_landmarker

    needs_landmarker("hands", "hand")
    mirror = Path(os.environ.get("TEACHBOX_MODEL_MIRROR") or REPO.parent / "shared" / "models")
    missing = [name for name in LANDMARK_MODELS if not (mirror / name).is_file()]
    if missing:
        pytest.skip(f"the hand models {', '.join(missing)} are not in the model mirror {mirror} "
                    "(set TEACHBOX_MODEL_MIRROR)")
    from device.sources import open_source

    return open_source("hand", picture_model=model_path, model_dirs=[mirror])


def test_the_real_hand_source_draws_the_hand_it_finds_over_the_live_view(browser, model_path, tmp_path):
    hands = Path(os.environ.get("TEACHBOX_HANDS") or REPO.parent / "shared" / "data" / "hands-dev")
    if not (hands / "paper").is_dir():
        pytest.skip(f"the hand photos are not at {hands} (set TEACHBOX_HANDS)")
    source = real_hand_source(model_path)
    from device.camera import load_rgb, list_images

    frames = {sign: load_rgb(list_images(hands / sign)[0]) for sign in ("paper", "rock", "scissors")}
    camera = still_scenes(tmp_path / "scenes", frames)  # one photo each: the same look every frame
    with served_box(model_path, tmp_path / "state", camera=camera, embedder=source) as served:
        served.box.select_source("paper")
        context = new_context(browser, served)
        try:
            tab = Tab(context)
            page = tab.open()
            expect(page.locator("#answer-card")).not_to_have_attribute("data-state", "absent")
            look = api_status(page)["look"]
            assert look is not None and look["kind"] == "hand" and len(look["points"]) == 21, look
            height, width = frames["paper"].shape[:2]
            assert_landmarks_drawn(page, look, (width, height))
            no_horizontal_scroll(page, 360)
            view_shot(page, "phone-51-hand-landmarks-real")
            page.locator(".live-card").screenshot(path=str(ARTIFACTS / "phone-51-hand-landmarks-real-live.png"))
            tab.close()
        finally:
            context.close()
