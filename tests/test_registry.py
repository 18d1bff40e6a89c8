"""The registry of named datasets, SPEC resolution, and `rnnkit datasets`.

Bundled files are replaced by small ones written here, so these tests do not depend on the package data.
"""

import gzip

import pytest

from rnnkit import cli as cli_module
from rnnkit.data import registry
from rnnkit.data.readers import Example
from rnnkit.data.registry import (
    companion_split,
    get_dataset,
    list_datasets,
    read_corpus,
    read_examples,
    split_spec,
)
from rnnkit.errors import DataError


@pytest.fixture
def builtin(tmp_path, monkeypatch):
    """A stand-in for the package's builtin/ folder with tiny bundled datasets."""
    folder = tmp_path / "builtin"
    folder.mkdir()
    for split, rows in [("train", ["noun.animal,a cat", "noun.food,a pie"]), ("valid", ["verb.motion,run"])]:
        with gzip.open(folder / f"default_{split}.csv.gz", "wt", encoding="utf-8") as f:
            f.write("label,text\n" + "\n".join(rows) + "\n")
    for split, text in [("train", "First Citizen:\nSpeak.\n"), ("valid", "All:\nSpeak!\n")]:
        with gzip.open(folder / f"shakespeare_{split}.txt.gz", "wt", encoding="utf-8") as f:
            f.write(text)
    monkeypatch.setattr(registry, "BUILTIN_DIR", folder)
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    return folder


def test_split_spec():
    assert split_spec("default") == ("default", "train")
    assert split_spec("default:test") == ("default", "test")
    assert split_spec("ag_news:test") == ("ag_news", "test")
    assert split_spec("my_data.csv") == ("my_data.csv", None)
    assert split_spec("unknown:thing") == ("unknown:thing", None)


def test_unknown_split_lists_the_splits():
    with pytest.raises(DataError, match="dataset 'ag_news' has no split 'valid'; its splits: train, test"):
        split_spec("ag_news:valid")


def test_an_existing_path_wins_over_a_registered_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "yes").mkdir()
    (tmp_path / "default" / "yes" / "1.txt").write_text("from the folder")
    assert split_spec("default") == ("default", None)
    assert read_examples("default") == [Example("from the folder", "yes")]


def test_companion_split():
    assert companion_split("default", "valid") == "default:valid"
    assert companion_split("default:train", "test") == "default:test"
    assert companion_split("default:test", "valid") is None  # not a training split
    assert companion_split("ag_news", "valid") is None  # AG News has no validation split
    assert companion_split("ag_news", "test") == "ag_news:test"
    assert companion_split("shakespeare", "valid") == "shakespeare:valid"
    assert companion_split("train.csv", "valid") is None
    with pytest.raises(ValueError, match="which must be 'valid' or 'test', got 'dev'"):
        companion_split("default", "dev")


def test_get_dataset_and_unknown_name():
    info = get_dataset("default")
    assert (info.task, info.splits) == ("classify", ("train", "valid", "test"))
    assert get_dataset("shakespeare").unit == "characters"
    with pytest.raises(DataError) as e:
        get_dataset("imdb")
    assert str(e.value) == "unknown dataset 'imdb'; known datasets: default, shakespeare, ag_news"


def test_unknown_name_as_a_spec_lists_the_known_datasets():
    with pytest.raises(DataError) as e:
        read_examples("imbd:test")
    assert str(e.value) == (
        "unknown dataset 'imbd' and no such file or folder; known datasets: default, shakespeare, ag_news"
    )


def test_missing_path_as_a_spec(tmp_path):
    with pytest.raises(DataError, match=r"train.csv: no such file or folder"):
        read_examples(tmp_path / "train.csv")


def test_read_bundled_datasets(builtin):
    assert read_examples("default") == [Example("a cat", "noun.animal"), Example("a pie", "noun.food")]
    assert read_examples("default:valid") == [Example("run", "verb.motion")]
    assert read_corpus("shakespeare") == "First Citizen:\nSpeak.\n"
    assert read_corpus("shakespeare:valid") == "All:\nSpeak!\n"


def test_read_corpus_of_a_path(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("abc\n")
    assert read_corpus(path) == "abc\n"


def test_task_mismatch(builtin):
    with pytest.raises(DataError, match="'shakespeare' is a corpus for language models"):
        read_examples("shakespeare")
    with pytest.raises(DataError, match="'default' holds labelled examples"):
        read_corpus("default")


def test_missing_bundled_file(builtin):
    with pytest.raises(DataError, match=r"default_test.csv.gz: bundled file of dataset 'default' is missing"):
        read_examples("default:test")


def test_list_datasets(builtin, tmp_path):
    by_name = {d["name"]: d for d in list_datasets()}
    assert list(by_name) == ["default", "shakespeare", "ag_news"]
    default, lm, news = by_name["default"], by_name["shakespeare"], by_name["ag_news"]
    assert default["sizes"] == {"train": 2, "valid": 1, "test": None}
    assert (default["available"], default["offline"], default["bundled"]) == (["train", "valid"], False, True)
    assert lm["sizes"] == {"train": 22, "valid": 12} and lm["unit"] == "characters" and lm["offline"]
    assert news["sizes"] == {"train": 120_000, "test": 7_600}
    assert news["where"] == str(tmp_path / "cache" / "ag_news")
    assert (news["offline"], news["bundled"]) == (False, False)


def test_datasets_command_prints_a_table(builtin, tmp_path, capsys):
    (tmp_path / "cache" / "ag_news").mkdir(parents=True)
    (tmp_path / "cache" / "ag_news" / "test.csv").write_text('"1","t","d"\n')
    with pytest.raises(SystemExit) as e:
        cli_module.main(["datasets"])
    assert e.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "task", "splits", "size", "where", "offline"]
    assert lines[1].split()[:2] == ["default", "classify"] and "2 / 1 / ? examples" in lines[1]
    assert "22 / 12 characters" in lines[2] and lines[2].endswith("yes")
    assert "120,000 / 7,600 examples" in lines[3] and lines[3].endswith("test only")


def test_cli_prints_library_warnings_as_one_line(capsys):
    import logging

    @cli_module.cli.command("warn-for-test")
    def warn():
        logging.getLogger("rnnkit.data.readers").warning("skipped 2 rows\nsecond line")

    try:
        with pytest.raises(SystemExit):
            cli_module.main(["warn-for-test"])
        with pytest.raises(SystemExit):
            cli_module.main(["warn-for-test"])  # the handler is installed once, not twice
    finally:
        cli_module.cli.commands.pop("warn-for-test")
    err = capsys.readouterr().err
    assert err == "rnnkit: warning: skipped 2 rows second line\n" * 2
