"""The dashboard in a real headless browser (Debian's chromium driven by Playwright): the page
loads with nothing fetched from outside, a lever control changes, the model steps and the
charts and sentences show the new data. Screenshots go to test-artifacts/.

`make test` installs chromium first (`make browser`); without it the test fails and says so."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from conftest import free_port, stopped_within

pytest.importorskip("solara")
playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("MITTELBAU_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# no background traffic from the browser itself: the check below is about the page
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.slow


def _browser() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no chromium at {CHROMIUM}: run `make browser` (Debian's chromium), or set MITTELBAU_CHROMIUM"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def server(root, tmp_path_factory):
    """`mittelbau dashboard` itself, on a free localhost port; stopped afterwards, with nothing
    left listening or running."""
    _browser()
    port = free_port()
    log = tmp_path_factory.mktemp("dashboard") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mittelbau.cli", "dashboard", "--no-open", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                pytest.fail(f"dashboard exited with {proc.returncode}:\n{log.read_text()}")
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                time.sleep(0.25)
        else:
            pytest.fail(f"dashboard did not answer at {url}:\n{log.read_text()}")
        processes = psutil.Process(proc.pid).children(recursive=True)
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert stopped_within(5, port, processes), f"the dashboard's server outlived it on port {port}"


def _percent(text: str, stage: int) -> float:
    return float(re.search(rf"stage {stage} ([\d.]+) %", text).group(1))


def test_dashboard_lever_step_and_compare(server, root):
    url, log = server
    artifacts = root / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    outside, failed = [], []
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_browser(), args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.on(
            "request",
            lambda r: (
                None if r.url.startswith((url, "data:", "blob:", "ws://127.0.0.1")) else outside.append(r.url)
            ),
        )
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        try:
            page.goto(url)
            status = page.get_by_test_id("status")
            status.wait_for(timeout=60_000)
            assert "Year 2015" in status.inner_text()
            assert "Programmes of this run: none" in page.get_by_test_id("settings").inner_text()
            assert page.title() == "mittelbau"
            tabs = [t.inner_text().strip() for t in page.get_by_role("tab").all()]
            assert tabs == ["STAGE SHARES", "OUTCOMES", "FIRM NETWORK", "AGAINST THE BASELINE"], tabs
            charts = page.locator(".views img")
            charts.first.wait_for(timeout=30_000)
            # stage shares, value added at stake, middle tier and hollowing, size classes
            assert charts.count() == 4
            before = charts.first.get_attribute("src")

            # a lever control: cooperation projects per year, moved from 0 by a click on its track
            control = page.locator(".v-input", has_text="cooperation projects")
            slider = control.locator("[role=slider]")
            assert slider.get_attribute("aria-valuenow") == "0"
            control.scroll_into_view_if_needed()
            track = control.locator(".v-slider").bounding_box()
            page.mouse.click(track["x"] + track["width"] * 0.2, track["y"] + track["height"] / 2)
            page.wait_for_function(
                "el => el.getAttribute('aria-valuenow') !== '0'", arg=slider.element_handle(), timeout=10_000
            )
            projects = int(slider.get_attribute("aria-valuenow"))
            assert 5 <= projects <= 15, projects
            page.get_by_role("button", name="Reset").click()
            page.wait_for_function(  # the new model is built on the server, with the new setting
                "n => document.querySelector('[data-testid=settings]')"
                ".innerText.includes(`cooperation ${n} `)",
                arg=projects,
                timeout=60_000,
            )
            for _ in range(3):
                page.get_by_role("button", name="Step").click()
                page.wait_for_timeout(400)
            page.wait_for_function(
                "() => document.querySelector('[data-testid=status]').innerText.includes('Year 2018')",
                timeout=60_000,
            )
            text = status.inner_text()
            shares = [_percent(text, k) for k in (1, 2, 3)]
            assert abs(sum(shares) - 100) < 0.2
            assert shares[0] < 33.8  # stage 1 shrinks from its 2015 level (sources §3.1 calibration)
            page.wait_for_function(
                "src => document.querySelector('.views img').getAttribute('src') !== src",
                arg=before,
                timeout=30_000,
            )
            page.screenshot(path=str(artifacts / "dashboard.png"))

            # the outcome registry's yearly outcomes, now
            page.get_by_role("tab", name="Outcomes").click()
            outcomes = page.get_by_test_id("outcomes")
            outcomes.wait_for(timeout=30_000)
            said = outcomes.inner_text()
            assert f"middle-tier share\t{shares[1]:.1f} %" in said, said
            assert "hollowed" in said and "upward rate" in said

            # the network view and the comparison with the same seed without programmes
            page.get_by_role("tab", name="Firm network").click()
            page.locator(".views img").first.wait_for(timeout=30_000)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(artifacts / "dashboard-network.png"))
            page.get_by_role("tab", name="Against the baseline").click()
            comparison = page.get_by_test_id("comparison")
            comparison.wait_for(timeout=30_000)
            page.locator(".views img").first.wait_for(timeout=30_000)  # with and without programmes
            said = comparison.inner_text()
            assert "Programmes: cooperation" in said, said
            spent = float(re.search(r"Spent so far: €([\d,]+)", said).group(1).replace(",", ""))
            # the projects a year set on the page, at the registry's default cost, three years
            assert spent == pytest.approx(3 * projects * 250_000)
            page.wait_for_timeout(1000)  # the tab's sliding transition
            page.screenshot(path=str(artifacts / "dashboard-compare.png"))

            # a budget of millions shows whole on its slider's thumb, also at the slider's end
            page.get_by_role("tab", name="Stage shares").click()
            page.get_by_test_id("status").wait_for(timeout=30_000)
            funding = page.locator(".v-input", has_text="funding programme")
            funding.scroll_into_view_if_needed()
            budget = funding.locator("[role=slider]")
            budget.focus()
            page.keyboard.press("End")
            page.wait_for_function(
                "el => el.getAttribute('aria-valuenow') === '5000000'", arg=budget.element_handle()
            )
            thumb = funding.locator(".v-slider__thumb-label")
            shown = thumb.evaluate(
                "el => { const s = el.firstElementChild;"
                " const box = el.getBoundingClientRect();"
                " const side = el.closest('.v-input').getBoundingClientRect();"
                " return [el.innerText, s.scrollWidth, box.width, box.right <= side.right + 0.5]; }"
            )
            assert shown[0] == "5000000" and 0 < shown[1] <= shown[2] and shown[3], shown
            page.screenshot(path=str(artifacts / "dashboard-funding-slider.png"))
        finally:
            browser.close()
    assert not outside, f"the page fetched from outside localhost: {outside}"
    assert not failed, f"failed requests: {failed}"
    assert "Could not load URL" not in log.read_text()
