"""The Rules and Events cards in real headless Chromium at 360×640: add a rule on the phone, see it fire
on the simulated panel, see the events and their chart."""

from __future__ import annotations

import re

import pytest

from test_browser import (DESKTOP, PHONE, SCENES, Tab, browser, dismiss_banner, new_context,  # noqa: F401
                          no_horizontal_scroll, screenshot, select_source, served_box, teach, unlock_with_pin)

expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture
def rules_box(model_path, tmp_path):
    with served_box(model_path, tmp_path / "state") as served:
        yield served


def test_a_rule_added_on_the_phone_fires_and_the_events_and_chart_show(browser, rules_box):  # noqa: F811
    context = new_context(browser, rules_box, PHONE)
    tab = Tab(context)
    try:
        page = tab.open()
        expect(page).to_have_title(re.compile(r" · teachbox$"))
        expect(page.locator("#rule-add")).to_be_disabled()  # locked
        unlock_with_pin(page)
        for class_id in (0, 1):
            teach(page, class_id, SCENES[class_id])
        dismiss_banner(page)

        page.locator("#rule-add").click()
        expect(page.locator("#rule-when")).to_have_value("Class 1")  # a new rule starts on the first class
        page.locator("#rule-name").fill("ball lamp")
        page.locator("#rule-confidence").fill("0")
        page.locator("#rule-hold").fill("0")
        page.locator("#rule-gpio").fill("5")  # a panel button: the box refuses it with its own words
        page.locator("#rule-mode").select_option("on")
        page.locator("#rule-form button[type=submit]").click()
        expect(page.locator("#rule-error")).to_contain_text("GPIO5 is the panel's")
        page.locator("#rule-gpio").fill("17")
        page.locator("#rule-form button[type=submit]").click()
        expect(page.locator("#rule-form")).to_be_hidden()
        rule = page.locator("#rules-list .rule")
        expect(rule).to_have_count(1)
        expect(rule).to_contain_text("When \u201cClass 1\u201d \u2265 0% for 0 s \u2192 GPIO17 on")

        select_source(page, SCENES[0])
        expect(page.locator('#panel-rule-pins [data-gpio="17"]')).to_contain_text("GPIO17 on (ball lamp)")
        expect(page.locator("#rules-list .rule-badge")).to_have_text("on now", timeout=15_000)
        select_source(page, SCENES[1])
        expect(page.locator('#panel-rule-pins [data-gpio="17"]')).to_contain_text("GPIO17 off", timeout=15_000)

        expect(page.locator("#events-list .event-rule").first).to_contain_text("(rule ball lamp)", timeout=15_000)
        expect(page.locator("#events-chart svg rect.chart-bar").first).to_be_visible()
        expect(page.locator("#events-legend")).to_contain_text("Class 1")
        page.locator("#events-day").click()
        expect(page.locator("#events-day")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#events-chart svg rect.chart-bar").first).to_be_visible()
        no_horizontal_scroll(page, 360)
        page.locator("#rules-card").scroll_into_view_if_needed()
        screenshot(page, "phone-60-rules-and-events")
    finally:
        tab.close()
        context.close()
    desktop = new_context(browser, rules_box, DESKTOP)
    try:
        tab = Tab(desktop)
        page = tab.open()
        expect(page.locator("#events-chart svg")).to_be_visible()
        screenshot(page, "desktop-60-rules-and-events")
        tab.close()
    finally:
        desktop.close()
