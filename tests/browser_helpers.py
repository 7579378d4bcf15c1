"""A real headless Chromium for the tests that look at pages as a reader's phone shows them.

Needs Debian's chromium and chromium-driver (`.ci/run` installs them); the tests using the
`browser` fixture (conftest.py) skip where they are absent.
"""

from __future__ import annotations

import shutil
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

PHONE_WIDTH = 375


def at_width(driver, width: int, url: str) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": 800, "deviceScaleFactor": 2, "mobile": width < 600})
    driver.get(url)



def in_both_schemes(driver, url: str, script: str, *args: object) -> dict[str, Any]:
    """`script`'s result on the page at `url`, at a phone's width, in the light and the dark scheme."""
    found = {}
    try:
        for scheme in ("light", "dark"):
            driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                   {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
            at_width(driver, PHONE_WIDTH, url)
            found[scheme] = driver.execute_script(script, *args)
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    return found
