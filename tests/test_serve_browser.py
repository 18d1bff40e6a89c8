"""The web page in headless Chromium: type a text, see the predicted label and a bar per class."""

import json
import time
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data import TextEncoder
from rnnkit.export import ExportedClassifier
from rnnkit.serve.app import create_app, serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (Debian's chromium package; .ci/run installs it)"
)
sync_api = pytest.importorskip("playwright.sync_api")

LABELS = ["animal", "food", "sport"]
WORD_CLASS = {"cat": 0, "dog": 0, "bread": 1, "soup": 1, "goal": 2, "match": 2}


def keyword_classifier() -> ExportedClassifier:
    """A stand-in model with known answers: each class's probability follows its words in the text."""
    encoder = TextEncoder.fit([" ".join(WORD_CLASS)])

    def run(ids, lengths):
        scores = np.ones((len(ids), len(LABELS)), dtype=np.float32)
        for row, (seq, n) in enumerate(zip(ids, lengths, strict=True)):
            for token in encoder.vocab.tokens(seq[:n].tolist()):
                if token in WORD_CLASS:
                    scores[row, WORD_CLASS[token]] += 4
        return scores / scores.sum(axis=1, keepdims=True)

    return ExportedClassifier(run, encoder, LABELS, backend="onnx")


@pytest.fixture(scope="module")
def page_url():
    with serve_in_thread(create_app(keyword_classifier())) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def bar_widths(page) -> dict[str, float]:
    return json.loads(
        page.evaluate("""() => JSON.stringify(Object.fromEntries(
        [...document.querySelectorAll('#bars .bar')].map(row =>
            [row.dataset.label, row.querySelector('.fill').getBoundingClientRect().width /
                                row.querySelector('.track').getBoundingClientRect().width])))""")
    )


def test_typing_shows_the_label_and_a_bar_per_class(browser, page_url):
    page = browser.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_url + "/")
    sync_api.expect(page.locator("#text")).to_be_visible()  # shown once the page knows the model's task
    assert page.locator("#result").is_hidden()  # nothing shown before anything is typed
    page.locator("#text").press_sequentially("my dog chased the cat", delay=15)
    sync_api.expect(page.locator("#label")).to_have_text("animal", timeout=10_000)
    sync_api.expect(page.locator("#bars .bar")).to_have_count(len(LABELS))
    page.wait_for_function("document.querySelector('#bars .bar .value').textContent !== ''")
    page.wait_for_timeout(300)  # the bars' width transition
    widths = bar_widths(page)
    assert set(widths) == set(LABELS)
    assert widths["animal"] == pytest.approx(9 / 11, abs=0.02)  # 1 + 4 + 4 of 11
    assert widths["food"] == pytest.approx(1 / 11, abs=0.02)
    assert "text=my%20dog%20chased%20the%20cat" in page.locator("#inspect-link").get_attribute("href")

    # The page follows the text as it changes (debounced: fewer requests than keystrokes).
    page.locator("#text").fill("")
    page.locator("#text").press_sequentially("bread and soup", delay=15)
    sync_api.expect(page.locator("#label")).to_have_text("food", timeout=10_000)
    predicts = [u for u in requests if u.endswith("/v1/predict")]
    assert 1 <= len(predicts) < len("my dog chased the cat") + len("bread and soup")
    assert all(u.startswith(page_url) for u in requests)  # the page needs no other server
    assert page.locator("#status").text_content() == ""
    page.close()


def test_the_page_names_the_model_and_shows_errors(browser, page_url):
    page = browser.new_page()
    page.goto(page_url + "/")
    sync_api.expect(page.locator("#model-summary")).to_contain_text("classifier")
    sync_api.expect(page.locator("#model-summary")).to_contain_text("backend onnx")
    page.locator("#text").fill("x" * 10_001)  # over the server's character limit
    sync_api.expect(page.locator("#status")).to_contain_text("the limit is 10,000", timeout=10_000)
    page.close()


class EchoLanguageModel:
    """A stand-in language model with a known stream: the prime, then "a", "b", "a", … one per token."""

    task = "lm"
    labels = None
    config = None
    encoder = TextEncoder.fit(["ab"], tokenizer="char", lm=True)

    def stream(self, prime="", length=200, **options):
        yield prime
        for i in range(length):
            time.sleep(0.005)
            yield "ab"[i % 2]


def test_language_model_page_streams_the_generation(browser):
    with serve_in_thread(create_app(EchoLanguageModel())) as base:
        page = browser.new_page()
        page.goto(base + "/")
        sync_api.expect(page.locator("#generate")).to_be_visible()
        assert page.locator("#classify").is_hidden()
        page.locator("#prime").fill("hello ")
        page.locator("#length").fill("9")
        page.locator("#generate-button").click()
        sync_api.expect(page.locator("#generated")).to_have_text("hello ababababa", timeout=10_000)
        sync_api.expect(page.locator("#generate-button")).to_be_enabled()
        assert "text=hello%20" in page.locator("#inspect-prime-link").get_attribute("href")
        page.close()
