"""The README's dashboard screenshot: runs `sluice demo`, opens its dashboard in Chromium
(Playwright, Debian's browser) once the drills have been scored for a while, and saves
docs/dashboard.png. Usage: .venv/bin/python bench/screenshot.py [seconds-to-wait]"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from sluice.testing import Spawned

OUT = Path(__file__).resolve().parent.parent / "docs" / "dashboard.png"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main() -> int:
    wait = float(sys.argv[1]) if len(sys.argv) > 1 else 40.0
    command = [sys.executable, "-m", "sluice.cli", "demo", "--duration", str(wait + 30)]
    with Spawned(command) as demo:
        line = demo.wait_for_line("Dashboard", timeout=180)
        url = re.search(r"https?://\S+", line)
        assert url is not None, line
        time.sleep(wait)  # the drills wear; the charts fill
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url.group())
            page.wait_for_selector("#drill-grid .drill", timeout=30_000)
            page.wait_for_timeout(3_000)  # a few refreshes
            page.screenshot(path=str(OUT), full_page=False)
            browser.close()
        demo.stop()
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
