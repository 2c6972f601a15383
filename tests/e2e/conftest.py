"""End-to-end fixtures: one real stack per session, a headless Chromium, timing figures.

The timings gathered here (stack start-up, time to first audio, ffmpeg, load
test) are printed at the end of the run under "e2e timings", and by each test
on stdout (visible with ``-s``).
"""

from __future__ import annotations

import pytest

from tests.e2e.stack import Stack, start_stack

# Chromium from Debian, driven by Playwright for Python (never `playwright install`).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]

_TIMINGS: dict[str, str] = {}


def record_figure(name: str, text: str) -> None:
    """Keep a figure for the end-of-run summary and show it now (``-s``)."""
    _TIMINGS[name] = text
    print(f"[e2e timing] {name}: {text}")


def record_timing(name: str, seconds: float) -> None:
    record_figure(name, f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s")


def pytest_terminal_summary(terminalreporter) -> None:
    if not _TIMINGS:
        return
    terminalreporter.section("e2e timings")
    width = max(len(k) for k in _TIMINGS)
    for name, text in _TIMINGS.items():
        terminalreporter.line(f"{name:<{width}}  {text:>10}")


@pytest.fixture(scope="package")
def stack(tmp_path_factory) -> Stack:
    """The running stack, shared by the e2e tests and stopped after the last of them."""
    s = start_stack(tmp_path_factory.mktemp("e2e-stack"))
    for name, seconds in s.timings.items():
        record_timing(name, seconds)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
