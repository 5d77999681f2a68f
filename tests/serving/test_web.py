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


SELECT_IN_ARTICLE = """
const [root, wanted] = arguments;
const nodes = [];
let text = "";
const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) { nodes.push([node, text.length]); text += node.data; }
const at = text.indexOf(wanted);
if (at < 0) return null;
const locate = (position, isEnd) => {
  for (const [node, base] of nodes) {
    const end = base + node.data.length;
    if (position >= base && (isEnd ? position <= end : position < end)) return [node, position - base];
  }
};
const range = document.createRange();
range.setStart(...locate(at, false));
range.setEnd(...locate(at + wanted.length, true));
const selection = window.getSelection();
selection.removeAllRanges();
selection.addRange(range);
return selection.toString();
"""
"""Selects `wanted` in #article as a reader's mouse would, across the <mark> elements the text is split into."""


def analyse(browser, live_server, article):
    """Opens the page, analyses `article` and returns the rows of pairs."""
    browser.get(live_server + "/")
    return analyse_on_open_page(browser, article)


def analyse_on_open_page(browser, article):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    # ChromeDriver cannot type characters outside the BMP, so the article is set as the page's own value.
    browser.execute_script("document.getElementById('text').value = arguments[0];", article)
    browser.find_element(By.ID, "analyse").click()
    WebDriverWait(browser, 30).until(until.presence_of_element_located((By.CSS_SELECTOR, "#results tbody tr.pair")))
    return browser.find_elements(By.CSS_SELECTOR, "#results tbody tr.pair")


def open_correction(browser, party):
    """Clicks "correct this" on the party's first row; returns the row's issue and index, and the form."""
    from selenium.webdriver.common.by import By

    row = next(row for row in browser.find_elements(By.CSS_SELECTOR, "#results tbody tr.pair") if row.text.startswith(party))
    row.find_element(By.CSS_SELECTOR, "button.correct").click()
    forms = browser.find_elements(By.CSS_SELECTOR, "#results form.review")
    assert len(forms) == 1, "one correction form at a time"
    return row.find_elements(By.TAG_NAME, "td")[1].text, row.get_attribute("data-index"), forms[0]


def choose(form, stance, sentiment):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(form.find_element(By.NAME, "stance")).select_by_value(stance)
    Select(form.find_element(By.NAME, "sentiment")).select_by_value(sentiment)


def use_selection(browser, form, wanted):
    from selenium.webdriver.common.by import By

    selected = browser.execute_script(SELECT_IN_ARTICLE, browser.find_element(By.ID, "article"), wanted)
    assert selected == wanted
    form.find_element(By.CSS_SELECTOR, "button.use-selection").click()
    assert form.find_element(By.CSS_SELECTOR, ".evidence-text").text == wanted


def wait_for_review(browser, *words):
    """The text of the first review listed with all `words`, once there is one."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def listed(driver):
        items = [item.text for item in driver.find_elements(By.CSS_SELECTOR, "#reviews li")]
        return next((item for item in items if all(word in item for word in words)), None)

    # The list is redrawn when the reviews arrive: an item read just then is stale, so look again.
    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))
    return wait.until(listed, message=f"no review listing {words}")


def stored_reviews(browser, live_server) -> list[dict]:
    import httpx
    from selenium.webdriver.common.by import By

    document_id = browser.find_element(By.ID, "results").get_attribute("data-document-id")
    assert document_id, "the page's answer was stored"
    response = httpx.get(f"{live_server}/v1/reviews", params={"document_id": document_id, "limit": 100}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["reviews"]


def test_correcting_a_pair_stores_the_review_and_lists_it(browser, live_server):
    from selenium.webdriver.common.by import By

    rows = analyse(browser, live_server, ARTICLE)
    for row in rows:  # a pair without an issue cannot be corrected
        issue = row.find_elements(By.TAG_NAME, "td")[1].text
        assert bool(row.find_elements(By.CSS_SELECTOR, "button.correct")) == (issue != "—"), row.text
    issue, index, form = open_correction(browser, "Russia")
    choose(form, "pressure", "negative")
    use_selection(browser, form, "Russia offered to host talks")
    form.find_element(By.NAME, "reviewer").clear()
    form.find_element(By.NAME, "reviewer").send_keys("analyst-1")
    form.find_element(By.CSS_SELECTOR, "button.save").click()

    listed = wait_for_review(browser, "Russia", "pressure")
    assert "negative" in listed and "analyst-1" in listed and "Russia offered to host talks" in listed
    russia_row = browser.find_element(By.CSS_SELECTOR, f'#results tr.pair[data-index="{index}"]')
    assert russia_row.find_elements(By.CSS_SELECTOR, ".reviewed")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#results .reviewed")) == 1, "only the corrected pair is marked"
    assert not browser.find_elements(By.CSS_SELECTOR, "#results form.review"), "the form closes once saved"
    (russia,) = [review for review in stored_reviews(browser, live_server) if review["party"] == "Russia"]
    assert (russia["issue"], russia["stance"], russia["sentiment"]) == (issue, "pressure", "negative")
    assert russia["reviewer"] == "analyst-1"
    assert [ARTICLE[start:end] for start, end in russia["evidence"]] == ["Russia offered to host talks"]

    # A second pair, keeping the model's heaviest evidence; the reviewer's name is remembered.
    _, _, form = open_correction(browser, "Japan")
    assert form.find_element(By.NAME, "reviewer").get_attribute("value") == "analyst-1"
    preset = form.find_element(By.CSS_SELECTOR, ".evidence-text").text
    assert preset and preset in ARTICLE
    choose(form, "pressure", "neutral")
    form.find_element(By.NAME, "note").send_keys("a demand, told flatly")
    form.find_element(By.CSS_SELECTOR, "button.save").click()

    wait_for_review(browser, "Japan", "pressure", "a demand, told flatly")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#reviews li")) == 2
    reviews = {review["party"]: review for review in stored_reviews(browser, live_server)}
    assert set(reviews) == {"Russia", "Japan"}
    assert [ARTICLE[start:end] for start, end in reviews["Japan"]["evidence"]] == [preset]
    assert reviews["Japan"]["note"] == "a demand, told flatly"


def test_a_correction_after_emoji_stores_code_point_offsets_and_shows_errors(browser, live_server):
    """The selection's offsets count code points (as the API does), not UTF-16 units; bad input gets a message."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    article = "Flags 🇯🇵 and faces 🙂🌏 filled the feeds. " + ARTICLE
    analyse(browser, live_server, article)
    _, _, form = open_correction(browser, "Russia")
    message = form.find_element(By.CSS_SELECTOR, ".message")

    browser.execute_script("window.getSelection().removeAllRanges();")
    form.find_element(By.CSS_SELECTOR, "button.use-selection").click()
    assert "error" in message.get_attribute("class") and "Nothing is selected" in message.text
    browser.execute_script(SELECT_IN_ARTICLE, browser.find_element(By.TAG_NAME, "header"), "Stanceline")
    form.find_element(By.CSS_SELECTOR, "button.use-selection").click()
    assert "error" in message.get_attribute("class") and "not inside the article" in message.text

    choose(form, "cooperative", "positive")
    use_selection(browser, form, "Russia offered to host talks")
    form.find_element(By.NAME, "reviewer").clear()
    form.find_element(By.NAME, "reviewer").send_keys("analyst-2")
    # A note over the API's limit (the input's maxlength stops typing, not a script): the API's error is shown.
    browser.execute_script("arguments[0].value = 'x'.repeat(2001);", form.find_element(By.NAME, "note"))
    form.find_element(By.CSS_SELECTOR, "button.save").click()
    WebDriverWait(browser, 30).until(lambda _: "invalid_request" in message.text)
    assert "error" in message.get_attribute("class")
    assert not browser.find_elements(By.CSS_SELECTOR, "#reviews li")

    form.find_element(By.NAME, "note").clear()
    form.find_element(By.CSS_SELECTOR, "button.save").click()
    wait_for_review(browser, "Russia", "cooperative", "analyst-2", "Russia offered to host talks")
    (review,) = stored_reviews(browser, live_server)
    assert [article[start:end] for start, end in review["evidence"]] == ["Russia offered to host talks"]


def test_without_its_database_the_page_still_analyses_but_offers_no_corrections(browser, live_server):
    """A 503 storage_unavailable on a stored prediction: the page asks again unstored (faked in the page's fetch)."""
    from selenium.webdriver.common.by import By

    browser.get(live_server + "/")
    browser.execute_script(
        """
        const realFetch = window.fetch;
        window.sentStore = [];
        window.fetch = (url, options) => {
          const store = url === "/v1/predict" ? JSON.parse(options.body).store : undefined;
          if (url === "/v1/predict") window.sentStore.push(store);
          if (store === true) {
            const error = {error: {code: "storage_unavailable", message: "the database is unavailable; retry later"}};
            return Promise.resolve(new Response(JSON.stringify(error), {status: 503}));
          }
          return realFetch(url, options);
        };
        """
    )
    rows = analyse_on_open_page(browser, ARTICLE)
    assert rows and not browser.find_elements(By.CSS_SELECTOR, "button.correct")
    assert browser.execute_script("return window.sentStore;") == [True, False]
    assert "not stored" in browser.find_element(By.ID, "status").text
    assert "not stored" in browser.find_element(By.ID, "reviews-status").text
    assert browser.find_element(By.ID, "results").get_attribute("data-document-id") == ""


def test_unticking_keep_for_review_keeps_nothing_and_offers_no_corrections(browser, live_server):
    from selenium.webdriver.common.by import By

    browser.get(live_server + "/")
    browser.execute_script(
        """
        const realFetch = window.fetch;
        window.sentStore = [];
        window.fetch = (url, options) => {
          if (url === "/v1/predict") window.sentStore.push(JSON.parse(options.body).store);
          return realFetch(url, options);
        };
        """
    )
    browser.find_element(By.ID, "store").click()
    rows = analyse_on_open_page(browser, ARTICLE)
    assert rows and not browser.find_elements(By.CSS_SELECTOR, "button.correct")
    assert browser.execute_script("return window.sentStore;") == [False]
    assert "not kept" in browser.find_element(By.ID, "status").text
    assert browser.find_element(By.ID, "results").get_attribute("data-document-id") == ""
