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

import os
import re
import threading
import time
from pathlib import Path

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


@pytest.fixture(scope="module")
def box(model_path, tmp_path_factory):
    state = tmp_path_factory.mktemp("browser-state")
    config = (Config()
              .override("model", path=str(model_path), threads=2)
              .override("storage", state_dir=str(state))
              .override("camera", source="synthetic")
              .override("web", host="127.0.0.1", port=0, pin=PIN))
    appliance = build_box(config, simulate=True)
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


def api_status(page):
    response = page.request.get("/api/status")
    assert response.ok, f"GET /api/status answered {response.status}"
    return response.json()


# -- the tests ----------------------------------------------------------------------------------

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

    page.locator("#pin").fill("0000")
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
        expect(page.locator("#answer")).to_have_text(answer)
        expect(page.locator("#answer-card")).to_have_attribute("data-state", "ok")
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
        expect(page.locator("#answer")).to_have_text(f"Class {lit + 1}")
        page.wait_for_function(LEDS_ARE, arg=[lit, 4], timeout=TIMEOUT)
        levels = [float(page.locator(f'#panel .led[data-led="{i}"]').get_attribute("data-level")) for i in range(4)]
        assert levels[lit] == max(levels) > 0, levels
        expect(page.locator(f'#panel .led[data-led="{lit}"]')).to_have_class(re.compile(r"\blit\b"))
        if scene == "blue box":
            screenshot(page, "phone-05-leds-blue-box")


def test_pairing_with_the_simulated_button_the_box_names(browser, box):
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
        page.locator(f'.sim-button[data-button="{code - 1}"]').click()  # a short press at the box
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
