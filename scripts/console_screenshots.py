"""Screenshots of the console for the README: a real node with the tests' scripted history,
Debian's Chromium driven by Playwright. Writes docs/console-account.png and
docs/console-chain.png.

    python scripts/console_screenshots.py
"""
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.support.scripted import USER, script_history, start_scripted_node  # noqa: E402
from tests.test_console_browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        node = start_scripted_node(Path(tmp))
        try:
            script_history(node)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"{node.url}/console/#/account/{USER.address}")
                page.wait_for_selector("[data-testid=lot-chart-1]", timeout=30_000)
                page.screenshot(path=str(REPO / "docs" / "console-account.png"), full_page=True)
                page.goto(f"{node.url}/console/#/chain")
                page.wait_for_selector("[data-testid=watch-list]", timeout=30_000)
                page.screenshot(path=str(REPO / "docs" / "console-chain.png"), full_page=True)
                browser.close()
        finally:
            node.stop()


if __name__ == "__main__":
    main()
