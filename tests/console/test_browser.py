"""The console in a real browser (headless Chromium via Playwright) against
a real runtime: list, timeline, signal, cancel, redrive, replay slider,
live updates, supervision, plots, and the token and CSRF gates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from aura import MissionStatus as S

from . import missions as m
from .conftest import Served

pytestmark = pytest.mark.usefixtures("served")
expect.set_options(timeout=20_000)  # a shared, noisy machine: wait for conditions, not times


def row(page: Any, mission_id: str) -> Any:
    return page.locator(f'tr[data-mission="{mission_id}"]')


def test_the_list_shows_every_mission_with_counts_filters_and_search(
    page: Any, served: Served, shots: Path
) -> None:
    expect(page.locator("#missions tbody tr")).to_have_count(6)
    assert "token=" not in page.url  # the token went into a cookie, not the history
    counts = page.locator("#counts")
    expect(counts.locator('[data-status="waiting"] b')).to_have_text("3")
    expect(counts.locator('[data-status="dead"] b')).to_have_text("1")
    expect(counts.locator('[data-status="failed"] b')).to_have_text("1")
    expect(counts.locator('[data-status="completed"] b')).to_have_text("1")
    expect(row(page, "ask-1")).to_contain_text("approval")
    expect(row(page, "ask-1")).to_contain_text("signal 'approve'")
    expect(row(page, "ask-1")).to_contain_text("$0.0100 / $1.00")
    page.screenshot(path=str(shots / "console-missions.png"), full_page=True)

    page.select_option('select[name="status"]', "waiting")
    page.click("form.filters button")
    expect(page.locator("#missions tbody tr")).to_have_count(3)
    page.select_option('select[name="status"]', "")
    page.select_option('select[name="name"]', m.broken.__aura_mission__.name)
    page.click("form.filters button")
    expect(page.locator("#missions tbody tr")).to_have_count(1)
    expect(row(page, "broken-1")).to_be_visible()
    page.select_option('select[name="name"]', "")
    page.fill('input[name="q"]', "ask-")
    page.click("form.filters button")
    expect(page.locator("#missions tbody tr")).to_have_count(2)


def test_a_timeline_shows_steps_memory_audit_and_untrusted_data_as_text(
    page: Any, served: Served, shots: Path
) -> None:
    page.click('tr[data-mission="xss-1"] a')
    expect(page.locator("#mission-status")).to_have_text("completed")
    timeline = page.locator("#timeline")
    expect(timeline.locator("tr.kind-step_done")).to_have_count(1)
    expect(timeline.locator("tr.kind-step_done")).to_contain_text("echo #0 attempt 1")
    expect(timeline.locator("tr.kind-step_done .result")).to_contain_text("<script>")
    expect(timeline.locator("tr.kind-scheduled")).to_have_count(1)
    duration = timeline.locator("tr.kind-step_done td").last.inner_text()
    assert re.fullmatch(r"\d+\.\d ms|\d+\.\d\d s", duration), duration
    expect(page.locator("#memory")).to_contain_text("<img src=x")
    expect(page.locator("#audit-badge")).to_have_text("verified")
    assert page.evaluate("window.pwned") is None  # nothing in the data ran
    assert page.locator("main script, main img").count() == 0


def test_a_failed_mission_shows_its_error_and_where(page: Any, served: Served) -> None:
    page.goto(f"{served.base}/missions/broken-1")
    box = page.locator("#error-box")
    expect(box).to_contain_text("explode")
    expect(box).to_contain_text("ValueError: exploded: on purpose")
    expect(box).to_contain_text("#1, attempt 1")


def test_answering_a_signal_in_the_page_completes_the_mission(
    page: Any, served: Served, shots: Path
) -> None:
    page.goto(f"{served.base}/missions/ask-1")
    expect(page.locator("#mission-status")).to_have_text("waiting")
    expect(page.locator("#signal-name")).to_have_value("approve")
    page.screenshot(path=str(shots / "console-mission.png"), full_page=True)
    page.click("button.approve")
    expect(page.locator("#act-status")).to_contain_text("taken by the runtime")
    expect(page.locator("#mission-status")).to_have_text("completed")  # live: no reload
    assert served.rt.get("ask-1").result["done"] == "approved=True"


def test_a_json_payload_is_checked_in_the_page_before_it_is_sent(page: Any, served: Served) -> None:
    page.goto(f"{served.base}/missions/ask-2")
    before = served.rt.store.version("$commands")
    page.fill("#signal-payload", "{not json")
    page.click("button.send")
    expect(page.locator("#act-status")).to_contain_text("not valid JSON")
    assert served.rt.store.version("$commands") == before  # nothing was queued
    page.fill("#signal-payload", '{"approved": "yes, with notes"}')
    page.click("button.send")
    expect(page.locator("#mission-status")).to_have_text("completed")
    assert "approved={'approved': 'yes, with notes'}" in served.rt.get("ask-2").result["done"]


def test_cancel_and_redrive_from_the_page(page: Any, served: Served) -> None:
    page.goto(f"{served.base}/missions/idle-1")
    page.click("button.cancel")
    expect(page.locator("#mission-status")).to_have_text("cancelled")
    assert served.rt.get("idle-1").status is S.CANCELLED

    page.goto(f"{served.base}/missions/dead-1")
    expect(page.locator("#mission-status")).to_have_text("dead")
    page.click("button.redrive")
    expect(page.locator("#act-status")).to_contain_text("taken by the runtime")
    expect(page.locator("#mission-status")).to_have_text("waiting")  # redriven: waits again
    expect(page.locator("#waiting-for")).to_contain_text("signal 'approve'")


def test_fork_a_failed_mission_from_the_event_the_slider_points_at(
    page: Any, served: Served
) -> None:
    page.goto(f"{served.base}/missions/broken-1")
    failed_at = int(page.locator("#timeline tr.failed").get_attribute("data-version"))
    page.locator("#replay-slider").fill(str(failed_at - 1))
    expect(page.locator("#replay-n")).to_have_text(str(failed_at - 1))
    page.fill('#fork-form input[name="new_id"]', "broken-1-retry")
    page.click("button.fork")
    expect(page.locator("#act-status")).to_contain_text("fork as broken-1-retry")
    expect(page.locator("#act-status")).to_contain_text("taken by the runtime")
    view = served.rt.wait("broken-1-retry", timeout=30)
    assert view.status is S.FAILED  # the same broken code fails again, from the fork point
    source = list(served.rt.store.read("mission/broken-1", 1, failed_at - 1))
    copy = list(served.rt.store.read("mission/broken-1-retry", 1, failed_at - 1))
    assert [e.kind for e in copy] == [e.kind for e in source]


def test_refused_actions_say_why_and_change_nothing(page: Any, served: Served) -> None:
    page.goto(f"{served.base}/missions/xss-1")
    before = served.rt.store.version("$commands")
    page.click("button.cancel")
    expect(page.locator("#act-status")).to_contain_text("completed: nothing to cancel")
    assert served.rt.store.version("$commands") == before


def test_the_replay_slider_shows_the_state_at_any_event(page: Any, served: Served) -> None:
    page.goto(f"{served.base}/missions/xss-1")
    slider = page.locator("#replay-slider")
    last = int(slider.get_attribute("max"))
    expect(page.locator("#replay-status")).to_have_text("completed")
    slider.fill("1")  # sets the range input's value and fires input
    expect(page.locator("#replay-n")).to_have_text("1")
    expect(page.locator("#replay-status")).to_have_text("pending")
    expect(page.locator("#replay-steps")).to_have_text("0")
    expect(page.locator("#replay-memory")).to_have_text("{}")
    slider.fill(str(last))
    expect(page.locator("#replay-status")).to_have_text("completed")
    expect(page.locator("#replay-steps")).to_have_text("1")
    expect(page.locator("#replay-memory")).to_contain_text("note")


def test_the_list_and_a_mission_page_update_live(page: Any, served: Served) -> None:
    expect(page.locator("#live-dot.on")).to_be_visible()
    served.rt.start(m.idle, mission_id="late-1")
    expect(row(page, "late-1")).to_contain_text("waiting")  # no reload

    page.goto(f"{served.base}/missions/late-1")
    expect(page.locator("#live-dot.on")).to_be_visible()
    served.rt.signal("late-1", "never", "from outside")
    expect(page.locator("#mission-status")).to_have_text("completed")
    expect(page.locator("#timeline")).to_contain_text("never = 'from outside'")


def test_supervision_and_plots(page: Any, served: Served, shots: Path) -> None:
    page.goto(f"{served.base}/supervision")
    tree = page.locator("#tree")
    expect(tree.locator('[data-child="missions"]')).to_contain_text("supervisor")
    expect(tree.locator('[data-child="mission/idle-1"]')).to_contain_text("restarts 0")
    page.goto(f"{served.base}/plots")
    expect(page.locator("#activity-chart svg rect.ok").first).to_be_attached()
    expect(page.locator("#durations-chart")).to_contain_text("echo")
    page.screenshot(path=str(shots / "console-plots.png"), full_page=True)


def test_without_the_token_or_the_csrf_token_nothing_is_served_or_changed(
    browser: Any, served: Served
) -> None:
    stranger = browser.new_context()
    try:
        pg = stranger.new_page()
        response = pg.goto(f"{served.base}/missions/ask-1")
        assert response.status == 401
        expect(pg.locator(".error")).to_contain_text("access token")
        response = pg.goto(f"{served.base}/?token=not-the-token")
        assert response.status == 401
        assert pg.goto(f"{served.base}/api/missions").status == 401

        pg.goto(served.console.url)  # now with the cookie
        before = served.rt.store.version("$commands")
        status = pg.evaluate(
            """async () => (await fetch('/api/act/cancel/idle-1', {method: 'POST',
                 headers: {'content-type': 'application/json'}, body: '{}'})).status"""
        )
        assert status == 403  # the token (cookie) alone does not allow a change
        assert served.rt.store.version("$commands") == before
        assert served.rt.get("idle-1").status is S.WAITING
    finally:
        stranger.close()
