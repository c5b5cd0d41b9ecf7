"""Driving Debian's Chromium with Playwright (TOOLCHAIN.md "Browser tests"): shared by the page tests on the
toy market (tests/web/test_pages.py) and on a real market run (tests/test_market_run.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("VERITRAIN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
#: Navigation start → the page's content rendered (``body[data-ready]``). DESIGN asks < 1 s on a local demo;
#: the bound here leaves room for a loaded CI machine, the measured numbers go to load-times.json.
LOAD_BUDGET_MS = 3000


@contextlib.contextmanager
def launch_browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run `make setup` (installs Debian's chromium with apt-get) or set "
            "VERITRAIN_CHROMIUM to a Chromium executable"
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


@contextlib.contextmanager
def checked_page(browser) -> Iterator[object]:
    """A fresh page that fails the test if it logs a console error, throws, or gets an HTTP status ≥ 400."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.on("response", lambda r: errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    pg.errors = errors
    try:
        yield pg
    finally:
        context.close()
    assert not errors, f"the page logged errors: {errors}"


def open_page(page, url: str, name: str, load_times: dict[str, float]) -> float:
    """Navigates and waits until the page rendered its content; returns navigation start → rendered, in ms
    (the page's own ``performance.now()`` when it finished rendering)."""
    page.goto(url)
    page.wait_for_selector("body[data-ready]", timeout=10_000)
    ms = float(page.get_attribute("body", "data-ready"))
    load_times[name] = ms
    assert page.locator("[data-testid=error]").count() == 0, page.inner_text("main")
    assert ms < LOAD_BUDGET_MS, f"{name} took {ms:.0f} ms to render"
    return ms


def shot(page, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def badges(locator) -> list[str]:
    return [t.strip() for t in locator.locator("[data-testid=badge]").all_inner_texts()]
