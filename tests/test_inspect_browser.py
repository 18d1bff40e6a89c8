"""The inspect report opened in a real browser: headless Chromium, driven by Playwright.

Checks that the page runs with no console errors and no network requests, draws one element per
token in every token view, shows the exact embedded values on hover, reacts to the selectors and to a
click on a found unit, and renders something that is not blank. Skipped only when Debian's Chromium
(``/usr/bin/chromium``, installed by ``.ci/run``) or Playwright is missing.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import torch

from rnnkit.data import TextEncoder
from rnnkit.inspect import find_units, inspect_text, read_report_data, write_report
from rnnkit.models.classifier import TextClassifier
from rnnkit.models.language_model import LanguageModel

CHROMIUM = Path(os.environ.get("RNNKIT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip

if not CHROMIUM.is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)",
                allow_module_level=True)  # fmt: skip
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

TEXTS = [
    "the film was not good",
    "a good film",
    "never dull , not bad",
    "no plot and no actor",
    "great story",
]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def classifier_page(tmp_path_factory):
    torch.manual_seed(0)
    encoder = TextEncoder.fit(TEXTS)
    model = TextClassifier(len(encoder), 3, cell="lstm", embed_dim=6, hidden_dim=7, layers=2,
                           bidirectional=True, pool="max").eval()  # fmt: skip
    result = inspect_text(model, "the film was not good , never dull", encoder=encoder,
                          labels=["neg", "neutral", "pos"])  # fmt: skip
    units = find_units(model, TEXTS, "not,never,no", encoder=encoder, top_k=4)
    path = tmp_path_factory.mktemp("inspect-page") / "report.html"
    write_report(result, path, units=units)
    return path, result, units


class Page:
    """One page load: console messages, page errors and requests are recorded."""

    def __init__(self, browser, path: Path):
        self.page = browser.new_page(viewport={"width": 1200, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on(
            "console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None
        )
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")

    def close(self):
        self.page.close()


def not_blank(png: bytes) -> bool:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    return len(colours) > 50 and max(count for count, _ in colours) < 0.95 * image.width * image.height


def shown_value(tooltip: str) -> float:
    """The number after the last " = " of a tooltip (JS writes it with String(v): the embedded value)."""
    return float(tooltip.rsplit(" = ", 1)[1].split()[0])


def test_page_opens_without_errors_or_network(browser, classifier_page):
    path, result, _ = classifier_page
    page = Page(browser, path)
    try:
        assert page.errors == []
        assert all(url.startswith(("file:", "data:")) for url in page.requests), page.requests
        tokens = len(result.tokens)
        assert page.page.locator("#tokens .token").count() == tokens
        assert page.page.locator("#contrib-tokens .token").count() == tokens
        assert page.page.locator("#prefix-chart polyline").count() == 3  # one line per class (3 classes)
        assert page.page.locator("#gates tbody tr").count() == 4  # 2 layers × 2 directions
        assert page.page.locator("#units tbody tr").count() == 4
        assert page.page.locator("#lm-view").is_hidden()
        assert not_blank(page.page.screenshot(full_page=True))
    finally:
        page.close()


def test_hover_shows_the_exact_embedded_value(browser, classifier_page):
    path, result, units = classifier_page
    data = read_report_data(path)
    page = Page(browser, path)
    try:
        top = units.top[0]  # the page starts on the best unit the finder found
        page.page.locator("#tokens .token").nth(3).hover()
        tip = page.page.locator("#tooltip")
        expected = data["states"][top.layer][top.direction][top.name][3][top.unit]
        assert tip.is_visible() and shown_value(tip.inner_text()) == expected
        assert float(expected) == pytest.approx(
            float(result.states(top.layer, top.direction, top.name)[3, top.unit])
        )
        # switch to the forget gate of layer 0, forward, unit 2: the tooltip follows
        page.page.select_option("#layer", "0")
        page.page.select_option("#direction", "0")
        page.page.select_option("#name", "f")
        page.page.select_option("#unit", "2")
        page.page.locator("#tokens .token").nth(1).hover()
        assert shown_value(tip.inner_text()) == data["states"][0][0]["f"][1][2]
        assert page.errors == []
    finally:
        page.close()


def test_clicking_a_found_unit_selects_it(browser, classifier_page):
    path, _, units = classifier_page
    page = Page(browser, path)
    try:
        third = units.top[2]
        page.page.locator("#units tbody tr").nth(2).click()
        assert page.page.locator("#layer").input_value() == str(third.layer)
        assert page.page.locator("#direction").input_value() == str(third.direction)
        assert page.page.locator("#name").input_value() == third.name
        assert page.page.locator("#unit").input_value() == str(third.unit)
        assert "selected" in (page.page.locator("#units tbody tr").nth(2).get_attribute("class") or "")
        assert page.errors == []
    finally:
        page.close()


def test_language_model_page(browser, tmp_path):
    torch.manual_seed(0)
    encoder = TextEncoder.fit(["to be or not to be"], tokenizer="char", lm=True)
    model = LanguageModel(len(encoder), cell="gru", embed_dim=5, hidden_dim=5).eval()
    text = "not to be\nor"
    result = inspect_text(model, text, encoder=encoder)
    write_report(result, tmp_path / "lm.html")
    page = Page(browser, tmp_path / "lm.html")
    try:
        assert page.errors == []
        assert page.page.locator("#tokens .token").count() == len(text)
        assert page.page.locator("#lm-tokens .token").count() == len(text)
        assert (
            page.page.locator("#prefix-view").is_hidden() and page.page.locator("#contrib-view").is_hidden()
        )
        assert "⏎" in page.page.locator("#tokens").inner_text()  # the line break is drawn, not lost
        assert not_blank(page.page.screenshot(full_page=True))
    finally:
        page.close()
