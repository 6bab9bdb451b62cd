"""The incident report in a real browser (Debian's Chromium, headless, over the DevTools protocol): it renders with
no console error, fetches nothing but itself, its graph names the incident's entities, and an incident full of
hostile text runs no script. `make test` installs Chromium (`make browser`), so in CI this never skips."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.report_support import CRITICAL_INCIDENT, SCENARIOS, hostile_finding, replay_with_reports

from .chromium import CHROMIUM, Chromium

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent: `make browser` installs Debian's chromium package"
)

CENTRE = "arn:aws:iam::111122223333:role/ml-training-role"
PWNED = "PWNED"  # what the hostile text sets document.title to, if any of it runs


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    chromium = Chromium()
    try:
        yield chromium
    finally:
        chromium.close()


def test_the_critical_incident_page_renders_fetches_nothing_and_draws_its_entities(
    browser: Chromium, tmp_path: Path
) -> None:
    # GIVEN the demo's incidents written as pages
    replay_with_reports(SCENARIOS, tmp_path / "state.db", tmp_path / "reports")
    page = (tmp_path / "reports" / f"{CRITICAL_INCIDENT}.html").resolve()
    # WHEN Chromium opens the critical one from disk
    load = browser.open(page.as_uri())
    # THEN nothing went wrong, and nothing was fetched but the page itself
    assert load.errors == []
    assert load.requests == [page.as_uri()]
    # AND the graph is drawn, with the incident's entities (the folded ones are counted instead)
    graph_text = browser.evaluate("document.getElementById('incident-graph').textContent")
    for entity in (CENTRE, "ASIAQNOTEBOOKEXAMPLE", "i-0a1b2c3d4e5f67890", "arn:aws:s3:::acme-fraud-training"):
        assert entity in graph_text
    assert "more object" in graph_text and "ml_asset_access" in graph_text
    box = browser.evaluate("JSON.stringify(document.getElementById('incident-graph').getBoundingClientRect())")
    assert '"width":0' not in box and '"height":0' not in box
    # AND the raw events are folded, closed
    assert browser.evaluate("document.querySelectorAll('details:not([open])').length") >= 20
    assert browser.evaluate("document.scripts.length") == 0


def test_hostile_event_text_runs_no_script_and_loads_nothing(browser: Chromium, tmp_path: Path) -> None:
    [page] = replay_with_reports(hostile_finding(tmp_path), tmp_path / "state.db", tmp_path / "reports")
    load = browser.open(page.resolve().as_uri())
    assert load.errors == []
    assert load.requests == [page.resolve().as_uri()]
    title = browser.evaluate("document.title")
    assert title != PWNED and title.startswith("[HIGH] ")  # the page's own title, hostile text and all, as text
    assert browser.evaluate("document.scripts.length + document.images.length + document.links.length") == 0
    # the hostile text is on the page, as text
    assert "onerror=" in browser.evaluate("document.body.innerText")


def test_the_browser_check_catches_a_script_that_runs(browser: Chromium, tmp_path: Path) -> None:
    # The same hostile text pasted into a page unescaped does run: the checks above can fail.
    from tests.unit.report_support import SCRIPT

    page = tmp_path / "unsafe.html"
    page.write_text(f"<!DOCTYPE html><html><head><title>report</title></head><body>{SCRIPT}</body></html>")
    load = browser.open(page.resolve().as_uri())
    assert browser.evaluate("document.title") == PWNED
    assert len(load.requests) > 1  # the <img src=x> was fetched
