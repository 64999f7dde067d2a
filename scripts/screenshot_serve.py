"""Screenshot of `sarcolor serve` for the README: the coast example colourised in headless Chromium.

    python scripts/screenshot_serve.py [-o docs/serve.png] [--chromium /usr/bin/chromium]

Needs the web and test extras (gradio, playwright) and Debian's chromium.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from sarcolor.serve_process import start_serve

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "s1_vh_coast_california.tif"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "serve.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    try:
        url, server = start_serve(["--examples", str(EXAMPLE.parent)])
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(120_000)
            page.goto(url)
            page.set_input_files("#upload input[type=file]", str(EXAMPLE))
            page.locator(f'#upload [aria-label="{EXAMPLE.name}"]').first.wait_for()
            page.click("#colorize")
            page.locator("#summary").get_by_text(EXAMPLE.name).wait_for()
            page.locator("#result img").first.wait_for(state="visible")
            time.sleep(1)  # let the slider images finish decoding
            page.screenshot(path=str(args.output), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
