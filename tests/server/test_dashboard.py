"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against a real
`sluice serve`: it logs in, its charts fill while a pipeline ingests, an error shows with its
record and the replay button clears it, and a read-only login cannot stop a pipeline."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator

import pytest

from sluice.testing import LocalBroker, produce
from tests.server.conftest import PASSWORD, Server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make tools installs it)"
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WAIT_MS = 30_000


@pytest.fixture
def page() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1100})
            yield context.new_page()
            context.close()
        finally:
            browser.close()


def log_in(page: object, server: Server, user: str, password: str, *, go: bool = True) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    if go:
        page.goto(server.url + "/")
    expect(page.locator("#login-form")).to_be_visible(timeout=WAIT_MS)
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#app")).to_be_visible(timeout=WAIT_MS)


def test_the_dashboard_live_in_a_browser(
    broker: LocalBroker, topic: Callable[..., str], server: Server, page: object
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    name = topic(4)
    good = [json.dumps({"id": i, "temp": i / 10}).encode() for i in range(20_000)]
    produce(broker.bootstrap, name, good[:5_000], partitions=4)
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INTEGER, temp DOUBLE)")
        cur.execute(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' "
            "MAX_OFFSETS_PER_BATCH_PARTITION 500 SKIP PARSER ERRORS "
            "INTO TABLE t FORMAT JSON (id <- id, temp <- temp)"
        )
        cur.execute("CREATE USER reader IDENTIFIED BY 'read-pw'")
        cur.execute("GRANT SELECT ON *.* TO reader")
        cur.execute("START PIPELINE p")

    log_in(page, server, "root", PASSWORD)
    row = page.locator("#pipelines tbody tr", has_text="p")
    expect(row.locator("td").nth(1)).to_have_text("Running", timeout=WAIT_MS)

    # While it ingests, the rows/s chart fills: its line gets points above zero.
    feeding = threading.Thread(
        target=produce, args=(broker.bootstrap, name, good[5_000:]), kwargs={"partitions": 4}
    )
    feeding.start()
    try:
        page.wait_for_function(
            """() => {
                const line = document.querySelector('#chart-rate polyline');
                if (!line) return false;
                const ys = line.getAttribute('points').trim().split(' ').map(p => +p.split(',')[1]);
                return ys.length > 2 && Math.min(...ys) < 150;   // a point above the floor
            }""",
            timeout=WAIT_MS,
        )
    finally:
        feeding.join()
    expect(page.locator("#chart-stages rect").first).to_be_attached(timeout=WAIT_MS)
    expect(page.locator("#partitions tbody tr")).to_have_count(4, timeout=WAIT_MS)

    # A record the pipeline cannot parse shows with its record ...
    produce(broker.bootstrap, name, [b'{"id": 99999, "reading": 1}'], partitions=1)
    error = page.locator("#errors tbody tr").first
    expect(error).to_contain_text('{"id": 99999, "reading": 1}', timeout=WAIT_MS)
    # ... and once the pipeline accepts such records, the replay button loads it.
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(
            f"CREATE OR REPLACE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' "
            "MAX_OFFSETS_PER_BATCH_PARTITION 500 SKIP PARSER ERRORS "
            "INTO TABLE t FORMAT JSON (id <- id, temp <- temp DEFAULT NULL)"
        )
    page.click("#replay")
    expect(page.locator("#errors tbody tr")).to_have_count(0, timeout=WAIT_MS)
    expect(page.locator("#message")).to_contain_text("1 rows loaded", timeout=WAIT_MS)

    # The SQL box answers read-only queries with a table.
    page.fill("#sql", "SELECT count(*) AS n FROM t WHERE id = 99999")
    page.click("#query-form button[type=submit]")
    expect(page.locator("#result tbody tr td").first).to_have_text("1", timeout=WAIT_MS)
    page.fill("#sql", "DROP TABLE t")
    page.click("#query-form button[type=submit]")
    expect(page.locator("#message")).to_contain_text("may not", timeout=WAIT_MS)

    if os.environ.get("SLUICE_SCREENSHOT"):
        page.screenshot(path=os.environ["SLUICE_SCREENSHOT"], full_page=True)

    # A read-only login sees everything and cannot stop the pipeline.
    page.click("#logout")  # the page reloads, to its login form
    log_in(page, server, "reader", "read-pw", go=False)
    expect(page.locator("#who")).to_contain_text("read-only")
    stop = page.locator("#pipelines tbody tr", has_text="p").locator("button")
    expect(stop).to_have_text("Stop", timeout=WAIT_MS)
    stop.click()
    expect(page.locator("#message")).to_contain_text("needs ALL", timeout=WAIT_MS)
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW PIPELINES")
        assert [(n, s) for n, s, _ in cur.fetchall()] == [("p", "Running")]
        cur.execute("SELECT count(*) FROM t")
        assert cur.fetchone() == (20_001,)
