"""A real runtime with real missions in every state the console shows, and
its console on a free port; a headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import aura
from aura import MissionStatus as S

from . import missions as m

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Served:
    data: Path
    rt: aura.Runtime
    console: Any

    @property
    def base(self) -> str:
        return str(self.console.base_url)


def make_dead(data: Path, mission_id: str) -> None:
    """A mission recovered by a runtime that lacks its definition: dead."""
    with aura.Runtime(data, missions=m.ALL) as rt:
        rt.start(m.approval, "dead letters", mission_id=mission_id)
        rt.wait(mission_id, timeout=30, until={S.WAITING})
    with aura.Runtime(data, missions=[]) as rt:
        assert rt.wait(mission_id, timeout=30).status is S.DEAD


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    data = tmp_path / "aura-data"
    make_dead(data, "dead-1")
    with aura.Runtime(data, missions=m.ALL) as rt:
        rt.start(m.untrusted, mission_id="xss-1").result(timeout=30)
        with pytest.raises(aura.MissionFailedError):
            rt.start(m.broken, mission_id="broken-1").result(timeout=30)
        for mission_id in ("ask-1", "ask-2"):
            rt.start(m.approval, "console", mission_id=mission_id)
            rt.wait(mission_id, timeout=30, until={S.WAITING})
        rt.start(m.idle, mission_id="idle-1")
        rt.wait("idle-1", timeout=30, until={S.WAITING})
        console = aura.serve_console(rt, port=0)
        try:
            yield Served(data, rt, console)
        finally:
            console.stop()


def chromium_path() -> str:
    found = os.environ.get("AURA_TEST_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("browser tests need Chromium: apt-get install chromium (or AURA_TEST_CHROMIUM)")
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.goto(served.console.url)  # the token once: the console sets its cookie
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: $AURA_SCREENSHOTS (README's come from there), else tmp."""
    where = Path(os.environ.get("AURA_SCREENSHOTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where
