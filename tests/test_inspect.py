"""rnnkit.inspect: recorded states and gates, per-prefix probabilities, attributions, the unit finder,
the report page's embedded numbers, the PNG, the Python API and the `rnnkit inspect` command.

The browser half (the page opened in headless Chromium) is in test_inspect_browser.py.
"""

from __future__ import annotations

import csv
import json
import math
import random

import pytest
import torch
from click.testing import CliRunner

import rnnkit
from rnnkit.cli import cli
from rnnkit.data import TextEncoder
from rnnkit.inspect import find_units, inspect_text, read_report_data, write_report
from rnnkit.inspect.record import gate_summary, integrated_gradients, prefix_probabilities
from rnnkit.inspect.units import trigger_positions
from rnnkit.models.classifier import TextClassifier
from rnnkit.models.language_model import LanguageModel

WORDS = ["good", "bad", "film", "plot", "great", "dull", "actor", "story", "fine", "awful", "was", "the"]
NEGATIONS = ["not", "never", "no"]


def reviews(n: int, seed: int) -> list[tuple[str, str]]:
    """(label, text) rows; about half hold a negation word somewhere in the middle."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = rng.choices(WORDS, k=rng.randint(4, 9))
        if i % 2:
            words.insert(rng.randint(1, len(words) - 1), rng.choice(NEGATIONS))
        rows.append(("neg" if i % 2 else "pos", " ".join(words)))
    return rows


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inspect-data")
    with (folder / "reviews.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "text"])
        writer.writerows(reviews(60, seed=1))
    return folder


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory):
    """A lesson-style LSTM classifier (no lengths, last state) trained for a few steps."""
    out = tmp_path_factory.mktemp("inspect-run") / "run"
    return rnnkit.train(data_dir / "reviews.csv", preset="lesson-lstm", out=out, embed_dim=8, hidden_dim=8,
                        epochs=1, batch_size=16, device="cpu", threads=1)  # fmt: skip


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder.fit([text for _, text in reviews(60, seed=1)])


def classifier(encoder, seed=0, **options) -> TextClassifier:
    torch.manual_seed(seed)
    settings = {"cell": "lstm", "embed_dim": 6, "hidden_dim": 5, **options}
    return TextClassifier(len(encoder), 3, **settings).eval()


TEXT = "the film was not good and never dull"


# --- recording --------------------------------------------------------------------------------------
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recorded_lstm_gates_recompute_the_states(encoder, bidirectional):
    model = classifier(encoder, layers=2, bidirectional=bidirectional)
    result = inspect_text(model, TEXT, encoder=encoder)
    assert result.names == ("h", "c", "i", "f", "g", "o")
    for k in range(2):
        for d in range(result.num_directions):
            s = {name: result.states(k, d, name) for name in result.names}  # each (L, H)
            previous_c = torch.zeros_like(s["c"])
            if d == 0:
                previous_c[1:] = s["c"][:-1]  # forward: c_{t-1}
            else:
                previous_c[:-1] = s["c"][1:]  # reverse, stored in token order: c_{t+1}
            torch.testing.assert_close(s["c"], s["f"] * previous_c + s["i"] * s["g"], rtol=0, atol=1e-6)
            torch.testing.assert_close(s["h"], s["o"] * torch.tanh(s["c"]), rtol=0, atol=1e-6)


def test_recorded_gru_gates_recompute_the_states():
    torch.manual_seed(0)
    encoder = TextEncoder.fit(["to be or not to be"], tokenizer="char", lm=True)
    model = LanguageModel(len(encoder), cell="gru", embed_dim=6, hidden_dim=5, layers=2).eval()
    result = inspect_text(model, "not to be", encoder=encoder)
    assert result.task == "lm" and result.names == ("h", "r", "z", "n")
    for k in range(2):
        s = {name: result.states(k, 0, name) for name in result.names}
        previous = torch.cat([torch.zeros_like(s["h"][:1]), s["h"][:-1]])
        torch.testing.assert_close(s["h"], (1 - s["z"]) * s["n"] + s["z"] * previous, rtol=0, atol=1e-6)


def test_recorded_top_layer_is_the_encoders_output(encoder):
    model = classifier(encoder, layers=2, bidirectional=True)
    result = inspect_text(model, TEXT, encoder=encoder)
    ids = torch.tensor([result.ids])
    with torch.no_grad():
        output, _ = model.encoder(model.embedding(ids))  # the fast path, (1, L, 2H)
    recorded = torch.cat([result.states(1, 0, "h"), result.states(1, 1, "h")], dim=-1)
    torch.testing.assert_close(recorded, output[0], rtol=0, atol=1e-5)


def test_tokens_keep_rare_words_and_mark_them_unknown(encoder):
    result = inspect_text(classifier(encoder), "the zyzzyva film", encoder=encoder)
    assert result.tokens == ["the", "zyzzyva", "film"]
    assert result.unknown == [False, True, False]
    assert result.ids[1] == encoder.vocab.unk_id


def test_empty_text_and_missing_encoder_are_clear_errors(encoder):
    with pytest.raises(ValueError, match="no tokens"):
        inspect_text(classifier(encoder), "   ", encoder=encoder)
    with pytest.raises(ValueError, match="encoder"):
        inspect_text(classifier(encoder), "good film")


# --- classifier extras ------------------------------------------------------------------------------
@pytest.mark.parametrize("use_lengths", [True, False])
def test_prefix_probabilities_equal_the_classifier_on_each_prefix(encoder, use_lengths):
    model = classifier(encoder, pool="last", use_lengths=use_lengths)
    result = inspect_text(model, TEXT, encoder=encoder)
    ids = torch.tensor(result.ids)
    with torch.no_grad():
        expected = torch.stack([torch.softmax(model(ids[None, : t + 1]), -1)[0] for t in range(len(ids))])
        # unidirectional, last state: the head applied to the recorded state after each token
        from_states = torch.softmax(model.head(result.states(0, 0, "h")), -1)
    torch.testing.assert_close(result.prefix_probs, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(result.prefix_probs, from_states, rtol=0, atol=1e-5)
    torch.testing.assert_close(result.prefix_probs[-1], result.probs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("pool", ["mean", "max", "attention"])
def test_prefix_probabilities_are_exact_for_bidirectional_pooling(encoder, pool):
    model = classifier(encoder, pool=pool, bidirectional=True, cell="gru")
    ids = torch.tensor(encoder.encode(TEXT))
    with torch.no_grad():
        expected = torch.stack([torch.softmax(model(ids[None, : t + 1]), -1)[0] for t in range(len(ids))])
    torch.testing.assert_close(prefix_probabilities(model, ids), expected, rtol=0, atol=1e-6)


def test_integrated_gradients_are_complete_and_ignore_zero_embeddings(encoder):
    model = classifier(encoder, bidirectional=True, pool="max")
    ids = torch.tensor([encoder.encode(TEXT)])
    zero_token = ids[0, 2]
    with torch.no_grad():
        model.embedding.weight[zero_token] = 0.0  # a token equal to the baseline contributes nothing
        model.embedding.weight.mul_(3.0)  # large inputs: a clearly non-linear path
    contributions, info = integrated_gradients(model, ids, target=1, steps=128)
    difference = info["f_input"] - info["f_baseline"]
    assert abs(difference) > 1e-3
    assert abs(float(contributions.sum()) - difference) < 0.01 * abs(difference) + 1e-4
    assert info["completeness_gap"] == pytest.approx(float(contributions.sum()) - difference, abs=1e-6)
    assert contributions[2] == 0.0
    assert info["method"] == "integrated gradients" and "Sundararajan" in info["citation"]


def test_attribution_target_by_name_and_bad_target(encoder):
    model = classifier(encoder)
    result = inspect_text(model, TEXT, encoder=encoder, labels=["a", "b", "c"], attribution_target="b")
    assert result.attribution["target"] == "b"
    with pytest.raises(ValueError, match="attribution_target"):
        inspect_text(model, TEXT, encoder=encoder, labels=["a", "b", "c"], attribution_target="z")


def test_language_model_next_token_probabilities():
    torch.manual_seed(1)
    encoder = TextEncoder.fit(["to be or not to be"], tokenizer="char", lm=True)
    model = LanguageModel(len(encoder), cell="lstm", embed_dim=6, hidden_dim=6).eval()
    result = inspect_text(model, "not to be", encoder=encoder)
    ids = torch.tensor(result.ids)
    assert math.isnan(result.next_token_probs[0])
    with torch.no_grad():
        for t in range(1, len(ids)):
            logits, _ = model(ids[None, :t])
            expected = torch.softmax(logits[0, -1], -1)[ids[t]]
            assert float(result.next_token_probs[t]) == pytest.approx(float(expected), abs=1e-6)
    assert result.probs is None and result.prefix_probs is None


def test_gate_summary_counts_forget_gate_values(encoder):
    model = classifier(encoder, layers=2)
    result = inspect_text(model, TEXT, encoder=encoder)
    summary = result.gate_summary()
    assert [(g["layer"], g["direction"], g["gate"]) for g in summary] == [(0, 0, "f"), (1, 0, "f")]
    with torch.no_grad():
        model.encoder.bias_ih_l1[5:10] = 20.0  # layer 1's forget gate saturates open: everything kept
    kept = inspect_text(model, TEXT, encoder=encoder).gate_summary()[1]
    assert kept["above_0_9"] == 1.0 and kept["below_0_1"] == 0.0
    f = result.states(0, 0, "f")
    assert summary[0]["above_0_9"] == pytest.approx(float((f > 0.9).float().mean()))
    assert summary[0]["n"] == f.numel()
    assert gate_summary(result.trace, "rnn") == []


# --- the unit finder --------------------------------------------------------------------------------
def plant_flag(
    model: TextClassifier, encoder: TextEncoder, unit: int, direction: int, persistent: bool
) -> None:
    """Make one LSTM unit of layer 0 a flag for "not": its cell state copies an indicator of the trigger.

    Embedding feature 0 is 1 for "not" and 0 for every other token. Transient: the unit forgets at
    every step and writes 1 at "not" only. Persistent: it keeps its memory and writes 1 at "not", so
    the flag stays raised for the rest of the text (in its reading direction).
    """
    h = model.encoder.hidden_size
    suffix = "_l0_reverse" if direction else "_l0"
    w_ih, w_hh = getattr(model.encoder, "weight_ih" + suffix), getattr(model.encoder, "weight_hh" + suffix)
    b_ih, b_hh = getattr(model.encoder, "bias_ih" + suffix), getattr(model.encoder, "bias_hh" + suffix)
    i, f, g, o = (unit + k * h for k in range(4))
    with torch.no_grad():
        model.embedding.weight[:, 0] = 0.0
        model.embedding.weight[encoder.vocab["not"], 0] = 1.0
        for row in (i, f, g, o):
            w_ih[row], w_hh[row], b_ih[row], b_hh[row] = 0.0, 0.0, 0.0, 0.0
        b_ih[o] = 10.0  # always show the memory
        if persistent:
            w_ih[i, 0], b_ih[i] = 20.0, -10.0  # write only at "not"
            b_ih[f] = 10.0  # keep
            b_ih[g] = 10.0  # write 1
        else:
            b_ih[i] = 10.0  # always write ...
            b_ih[f] = -10.0  # ... and forget
            w_ih[g, 0] = 10.0  # what is written: 1 at "not", 0 elsewhere


def test_unit_finder_recovers_a_planted_unit(encoder):
    model = classifier(encoder, seed=3, hidden_dim=6)
    plant_flag(model, encoder, unit=4, direction=0, persistent=False)
    texts = [text for _, text in reviews(40, seed=5)]
    search = find_units(model, texts, "not", encoder=encoder, top_k=5)
    assert {search.top[0].name, search.top[1].name} == {"h", "c"}
    assert all((u.layer, u.direction, u.unit) == (0, 0, 4) for u in search.top[:2])
    best = search.top[0]
    assert best.score > 10 and best.mean_after > 0.9 and abs(best.mean_elsewhere) < 0.05
    assert search.triggers == sum(text.split().count("not") for text in texts)
    assert best.n_after == search.triggers and best.n_after + best.n_elsewhere == search.tokens
    json.dumps(search.to_dict(), allow_nan=False)  # JSON-able


def test_unit_finder_reads_the_reverse_direction_backwards(encoder):
    model = classifier(encoder, seed=4, hidden_dim=4, bidirectional=True)
    plant_flag(model, encoder, unit=1, direction=1, persistent=True)  # raised from "not" to the text's start
    texts = [text for _, text in reviews(40, seed=6) if text.split().count("not") == 1]
    search = find_units(model, texts, ["not"], encoder=encoder, window=None, names=["c"], top_k=3)
    best = search.top[0]
    assert (best.layer, best.direction, best.name, best.unit) == (0, 1, "c", 1)
    assert best.score > 10


def test_trigger_sequences_and_windows():
    tokens = ["and", "tom", "were", "here", "and", "sam"]
    assert trigger_positions(tokens, [("and", "tom")], window=1) == [False, True, True, False, False, False]
    assert trigger_positions(tokens, [("and", "tom")], window=1, reverse=True) == [True] + [False] * 5


def test_unit_finder_errors(encoder):
    model = classifier(encoder)
    with pytest.raises(ValueError, match="never occurs"):
        find_units(model, ["good film", "bad plot"], "not", encoder=encoder)
    with pytest.raises(ValueError, match="at least one trigger"):
        find_units(model, ["good film"], " , ", encoder=encoder)
    with pytest.raises(ValueError, match="names must be among"):
        find_units(model, ["not good"], "not", encoder=encoder, names=["q"])


# --- the page and the PNG ---------------------------------------------------------------------------
def test_numbers_embedded_in_the_page_equal_the_recorded_tensors(encoder, tmp_path):
    model = classifier(encoder, layers=2, bidirectional=True, pool="attention")
    result = inspect_text(model, TEXT, encoder=encoder, labels=["a", "b", "c"])
    units = find_units(model, [text for _, text in reviews(20, seed=2)], "not,never", encoder=encoder)
    write_report(result, tmp_path / "report.html", units=units)
    data = read_report_data(tmp_path / "report.html")

    assert data["tokens"] == result.tokens and data["names"] == list(result.names)
    for k in range(2):
        for d in range(2):
            for name in result.names:
                embedded = torch.tensor(data["states"][k][d][name], dtype=torch.float32)
                assert torch.equal(embedded, result.states(k, d, name)), (k, d, name)
    for key in ("probs", "prefix_probs", "contributions"):
        assert torch.equal(torch.tensor(data[key], dtype=torch.float32), getattr(result, key)), key
    assert data["prediction"] == result.prediction
    assert data["gate_summary"] == result.gate_summary()
    assert data["units"]["top"][0]["unit"] == units.top[0].unit


def test_page_is_self_contained_and_escapes_the_text(encoder, tmp_path):
    text = 'the film </script><script>alert("x")</script> & <!-- not good'
    result = inspect_text(classifier(encoder), text, encoder=encoder)
    write_report(result, tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count("</script>") == 2  # the data element's and the code's, nothing from the text
    embedded = page.split('id="rnnkit-data">')[1].split("</script>")[0]
    assert "<" not in embedded and "\\u003c/script\\u003e" in embedded  # written as \u003c escapes
    assert read_report_data(tmp_path / "report.html")["text"] == text
    for reference in ('src="http', "src='http", 'href="http', "@import", "url(http"):
        assert reference not in page


def test_language_model_page_carries_next_token_probabilities(tmp_path):
    torch.manual_seed(0)
    encoder = TextEncoder.fit(["to be or not to be"], tokenizer="char", lm=True)
    model = LanguageModel(len(encoder), cell="rnn", embed_dim=4, hidden_dim=4).eval()
    result = inspect_text(model, "to be", encoder=encoder)
    write_report(result, tmp_path / "lm.html")
    data = read_report_data(tmp_path / "lm.html")
    assert data["task"] == "lm" and data["next_token_probs"][0] is None
    assert torch.equal(torch.tensor(data["next_token_probs"][1:]), result.next_token_probs[1:])
    assert data["gate_summary"] == [] and data["prefix_probs"] is None


def test_png_heatmap(encoder, tmp_path):
    model = classifier(encoder, hidden_dim=80)
    result = inspect_text(model, TEXT, encoder=encoder)
    assert len(result.save_png(tmp_path / "h.png", name="c", max_units=16)) == 16
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from rnnkit.inspect.png import save_heatmap

    shown = save_heatmap(result, tmp_path / "h2.png", name="f", max_units=16)
    spread = result.states(0, 0, "f").std(dim=0)
    assert sorted(shown) == sorted(torch.topk(spread, 16).indices.tolist())  # the most varied units
    with pytest.raises(ValueError, match="units must be in"):
        save_heatmap(result, tmp_path / "h3.png", units=[80])


# --- Python API and command line ----------------------------------------------------------------
def test_loaded_run_inspect_matches_predict(run_dir):
    run = rnnkit.load(run_dir, device="cpu")
    text = "the plot was not great"
    result = run.inspect(text)
    predicted = run.predict(text)[0]
    assert result.prediction == predicted["label"]
    for label, p in predicted["probs"].items():
        assert float(result.probs[run.labels.index(label)]) == pytest.approx(p, abs=1e-5)
    assert result.labels == run.labels and result.tokens == ["the", "plot", "was", "not", "great"]


def test_cli_inspect_writes_page_png_and_json(run_dir, data_dir, tmp_path):
    out, png = tmp_path / "report.html", tmp_path / "heat.png"
    args = ["inspect", str(run_dir), "the film was not good", "--out", str(out), "--png", str(png),
            "--find-units", "--pattern", "not,never,no", "--data", str(data_dir / "reviews.csv"),
            "--state", "c", "--top", "3", "--device", "cpu", "--json"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["tokens"] == ["the", "film", "was", "not", "good"]
    assert summary["states"] is None and len(summary["prefix_probs"]) == 5
    assert len(summary["units"]["top"]) == 3 and summary["units"]["pattern"] == ["not", "never", "no"]
    assert summary["units"]["triggers"] == sum(
        text.split().count(w) for _, text in reviews(60, seed=1) for w in NEGATIONS
    )
    assert read_report_data(out)["units"] == summary["units"]
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_inspect_on_a_language_model_run(tmp_path):
    corpus = tmp_path / "hamlet.txt"
    lines = ["to be or not to be", "that is the question", "whether tis nobler to suffer"] * 4
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = rnnkit.train(corpus, task="lm", out=tmp_path / "lm", tokenizer="char", embed_dim=6, hidden_dim=6,
                       bptt=8, batch_size=2, max_steps=5, device="cpu", threads=1)  # fmt: skip
    assert rnnkit.load(run).inspect("not to").tokens == list("not to")
    args = ["inspect", str(run), "not to be", "--out", str(tmp_path / "lm.html"), "--find-units",
            "--pattern", "to", "--data", str(corpus), "--device", "cpu", "--json"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["task"] == "lm" and summary["tokens"] == list("not to be")
    assert summary["next_token_probs"][0] is None and all(0 < p < 1 for p in summary["next_token_probs"][1:])
    assert summary["units"]["triggers"] == sum(line.count("to") for line in lines)  # "to" as 2 characters
    text = CliRunner().invoke(cli, ["inspect", str(run), "to be", "--out", str(tmp_path / "b.html")])
    assert text.exit_code == 0 and "p(token | tokens before)" in text.output


def test_cli_inspect_text_output(run_dir, tmp_path):
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        cli, ["inspect", str(run_dir), "good film", "--out", str(out), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert "prediction:" in result.output and "gate f layer 0 forward" in result.output
    assert f"report: {out}" in result.output and out.is_file()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--find-units"], "--find-units needs --pattern"),
        (["--pattern", "not"], "go with --find-units"),
        (["--find-units", "--pattern", "not", "--data", "x.csv", "--window", "soon"], "'all'"),
    ],
)
def test_cli_inspect_usage_errors(run_dir, tmp_path, extra, message):
    result = CliRunner().invoke(
        cli, ["inspect", str(run_dir), "good", "--out", str(tmp_path / "r.html"), *extra]
    )
    assert result.exit_code == 2 and message in result.output


def test_cli_inspect_bad_run_folder(tmp_path):
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path / "nowhere"), "good"])
    assert result.exit_code == 2 and "run folder not found" in result.output
