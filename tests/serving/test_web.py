"""The web page in real headless Chromium: paste an article, see pairs, bars and highlighted evidence."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="headless Chromium not installed: `apt-get install chromium chromium-driver` to run the web page test",
)

ARTICLE = "Japan demanded that North Korea halt its missile launches. Russia offered to host talks on the missile issue."


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_pasting_an_article_shows_pairs_bars_and_highlighted_evidence(browser, live_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(live_server + "/")
    browser.find_element(By.ID, "text").send_keys(ARTICLE)
    browser.find_element(By.ID, "analyse").click()
    WebDriverWait(browser, 30).until(until.presence_of_element_located((By.CSS_SELECTOR, "#results tbody tr.pair")))
    rows = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr.pair")
    cells = [row.text for row in rows]
    assert any(cell.startswith("Japan") for cell in cells) and any(cell.startswith("Russia") for cell in cells)
    assert browser.find_elements(By.CSS_SELECTOR, ".bar > span"), "confidence bars are drawn"
    marks = browser.find_elements(By.CSS_SELECTOR, "#article mark")
    assert any("Japan demanded" in mark.text for mark in marks)
    japan_row = next(row for row in rows if row.text.startswith("Japan"))
    japan_row.click()
    active = browser.find_elements(By.CSS_SELECTOR, "#article mark.active")
    assert active and all(mark.text in ARTICLE for mark in active)
    assert "Japan" in browser.find_element(By.ID, "found").text
    browser.save_screenshot(str(tmp_path / "page.png"))


def test_an_empty_article_gets_a_clear_message(browser, live_server):
    from selenium.webdriver.common.by import By

    browser.get(live_server + "/")
    browser.find_element(By.ID, "analyse").click()
    assert "Paste or upload an article first" in browser.find_element(By.ID, "status").text


def test_evidence_after_emoji_is_highlighted_on_the_right_characters(browser, live_server):
    """The API counts code points; the page must not count UTF-16 units (an emoji is two of them)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    article = "Flags 🇯🇵 and faces 🙂🌏 filled the feeds. " + ARTICLE
    browser.get(live_server + "/")
    # ChromeDriver cannot type characters outside the BMP, so the article is set as the page's own value.
    browser.execute_script("document.getElementById('text').value = arguments[0];", article)
    browser.find_element(By.ID, "analyse").click()
    WebDriverWait(browser, 30).until(until.presence_of_element_located((By.CSS_SELECTOR, "#article mark")))
    marks = [mark.text for mark in browser.find_elements(By.CSS_SELECTOR, "#article mark")]
    assert "Japan demanded that North Korea halt its missile launches." in marks, marks
    assert browser.find_element(By.ID, "article").text == article
