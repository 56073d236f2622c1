"""The demo landing page in headless Chromium against the whole local stack.

The page gets an ECID (AMCV cookie) from ``/_local/visitor``, shows the visitor's IDs from
``GET /ids``, and after "add to cart" on a tent (``POST /signals`` with ``c_category=tents``,
then ``GET /segments?refresh=true``) personalizes its banner: under the simulator's demo rules a
tent realizes trait 1001, which qualifies the visitor for segment 2001 ("Campers").
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from local.run import LocalStack

pytestmark = pytest.mark.e2e

WAIT_SECONDS = 20


def text_of(driver: Any, testid: str) -> str:
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.CSS_SELECTOR, f"[data-testid='{testid}']")
    return str(element.get_attribute("textContent") or "").strip()


def attribute_of(driver: Any, testid: str, name: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, f"[data-testid='{testid}']").get_attribute(name) or "")


def segment_ids(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    items = driver.find_elements(By.CSS_SELECTOR, "[data-testid='segments-list'] li[data-segment-id]")
    return [str(item.get_attribute("data-segment-id")) for item in items]


def page_notice(driver: Any) -> str:
    hidden = attribute_of(driver, "notice", "hidden")
    return "" if hidden in ("true", "hidden") else text_of(driver, "notice")


def test_page_shows_the_visitor_and_personalizes_after_a_signal(stack: LocalStack, browser: Any) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_SECONDS, poll_frequency=0.1)
    browser.get(f"{stack.api_url}/")

    # The page renders as a shop, whatever the API does.
    assert "Ridgeline" in browser.title
    assert len(browser.find_elements(By.CSS_SELECTOR, "[data-testid='product-grid'] .product-card")) >= 8
    assert attribute_of(browser, "hero-banner", "data-segment") == "default"

    # The visitor's IDs: a 38-digit ECID from the AMCV cookie, its home region and host.
    try:
        wait.until(lambda d: re.fullmatch(r"[0-9]{38}", text_of(d, "visitor-mid")))
    except TimeoutException:
        pytest.fail(f"no visitor ID shown: {text_of(browser, 'visitor-mid')!r}; notice: {page_notice(browser)!r}")
    mid = text_of(browser, "visitor-mid")
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    assert mid in cookies.get("AMCV_0123456789ABCDEF01234567%40AdobeOrg", ""), cookies
    assert text_of(browser, "visitor-region").startswith("9")
    assert text_of(browser, "visitor-region-host") == "usw2.demdex.net"
    assert "2001" not in segment_ids(browser)

    # Add a tent to the cart: a signal that qualifies segment 2001 (Campers) under the demo rules.
    stack.simulator.clear_calls()
    browser.find_element(By.CSS_SELECTOR, "[data-testid='add-tent-summit-2']").click()
    try:
        wait.until(lambda d: "2001" in segment_ids(d))
    except TimeoutException:
        pytest.fail(
            f"segment 2001 never showed: segments {segment_ids(browser)}, "
            f"status {text_of(browser, 'profile-status')!r}, notice {page_notice(browser)!r}"
        )
    assert attribute_of(browser, "hero-banner", "data-segment") == "2001"
    assert text_of(browser, "hero-title") == "Nights under the stars"
    assert attribute_of(browser, "recommendations-list", "data-segment") == "2001"
    assert text_of(browser, "cart-count") == "1"

    # The DCS saw the visitor's signal, sent server to server for this ECID.
    events = stack.simulator.calls("/event")
    assert events, "the DCS simulator received no /event call"
    sent = [dict(call["params"]) for call in events]
    assert any(p.get("c_category") == "tents" and p.get("d_mid") == mid for p in sent), sent
