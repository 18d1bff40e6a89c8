"""Readers for users' files: every format on small files written here, and every kind of bad input."""

import gzip
import logging

import pytest

from rnnkit.data.readers import Example, detect_format, iter_file, parse_column, read_file, read_text
from rnnkit.errors import ConfigError, DataError

READERS = "rnnkit.data.readers"


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.name == READERS and r.levelno == logging.WARNING]


# --- formats ---------------------------------------------------------------------------------------------


def test_csv_with_bom_crlf_quoted_newline_and_unicode(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(
        "\ufefftext,label\r\n"
        '"Zoë said ""hi"",\r\nthen left",greeting\r\n'
        "naïve café 日本,food\r\n".encode()
    )
    examples = read_file(path)
    assert examples == [
        Example('Zoë said "hi",\r\nthen left', "greeting"),
        Example("naïve café 日本", "food"),
    ]
    assert [(e.path, e.line) for e in examples] == [(str(path), 2), (str(path), 4)]  # where each row starts


def test_several_text_columns_are_joined_and_label_column_is_configurable(tmp_path):
    path = write(tmp_path / "news.csv", "title,body,topic\nBig win, for the team ,sport\n,Only a body,misc\n")
    examples = read_file(path, text_cols=("title", "body"), label_col="topic")
    assert examples == [Example("Big win for the team", "sport"), Example("Only a body", "misc")]


def test_unlabelled_table_with_label_col_none(tmp_path):
    path = write(tmp_path / "a.csv", "text\nhello\n")
    assert read_file(path, label_col=None) == [Example("hello", None)]


def test_tsv(tmp_path):
    path = write(tmp_path / "a.tsv", "label\ttext\npos\tgood, really good\nneg\tbad\n")
    assert read_file(path) == [Example("good, really good", "pos"), Example("bad", "neg")]


def test_headerless_csv_by_column_index(tmp_path):
    path = write(tmp_path / "raw.csv", '3,"Title one","Body one"\n1,"Title two","Body two"\n')
    examples = read_file(path, text_cols=(1, 2), label_col=0)
    assert examples == [Example("Title one Body one", "3"), Example("Title two Body two", "1")]
    assert read_file(path, text_cols=("1", "2"), label_col="0") == examples  # as typed on the command line


def test_indices_with_a_header_skip_the_header(tmp_path):
    path = write(tmp_path / "a.csv", "y,x\nb,hello\n")
    assert read_file(path, text_cols=1, label_col=0, header=True) == [Example("hello", "b")]


def test_gzip_file_is_read_transparently(tmp_path):
    path = tmp_path / "a.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\ufefflabel,text\nx,compressed text\n")
    assert detect_format(path) == "csv"
    assert read_file(path) == [Example("compressed text", "x")]


def test_jsonl_with_configurable_keys_and_integer_label(tmp_path):
    lines = '{"body": "first", "y": 1}\n\n{"body": "sécond", "y": "b", "extra": 0}\r\n'
    path = write(tmp_path / "a.jsonl", lines)
    assert read_file(path, text_cols="body", label_col="y") == [Example("first", "1"), Example("sécond", "b")]


def test_txt_is_one_unlabelled_example_per_line(tmp_path):
    path = write(tmp_path / "a.txt", "first line\r\nsecond line\n")
    assert read_file(path) == [Example("first line"), Example("second line")]


def test_folder_with_one_subfolder_per_class(tmp_path):
    files = [("pos", "1.txt", "good\nfilm"), ("pos", "2.txt", "nice"), ("neg", "a.txt", "bad")]
    for label, name, text in files:
        (tmp_path / label).mkdir(exist_ok=True)
        write(tmp_path / label / name, text)
    write(tmp_path / "README.md", "ignored")
    assert detect_format(tmp_path) == "folder"
    expected = [Example("bad", "neg"), Example("good\nfilm", "pos"), Example("nice", "pos")]
    examples = read_file(tmp_path)
    assert examples == expected  # sorted by class, then file
    assert (examples[0].path, examples[0].line) == (str(tmp_path / "neg" / "a.txt"), None)


def test_folder_warns_about_empty_files_and_empty_class_folders(tmp_path, caplog):
    for label in ("pos", "neg", "unused"):
        (tmp_path / label).mkdir()
    write(tmp_path / "pos" / "1.txt", "good")
    write(tmp_path / "neg" / "1.txt", " \n")
    with caplog.at_level(logging.WARNING, logger=READERS):
        assert read_file(tmp_path) == [Example("good", "pos")]
    assert warnings_of(caplog) == [
        f"{tmp_path}: class folders with no .txt files: unused",
        f"{tmp_path}: skipped 1 example(s) with empty text (the first at {tmp_path / 'neg' / '1.txt'})",
    ]


def test_very_long_field(tmp_path):
    long_text = "word " * 100_000  # 500 kB, over the csv module's default 128 KiB field limit
    path = write(tmp_path / "a.csv", f'text,label\n"{long_text}",x\n')
    assert read_file(path)[0].text == long_text.strip()


def test_iter_file_streams_rows_before_reaching_a_bad_one(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\nfine,x\nbroken\n")
    examples = iter_file(path)
    assert next(examples) == Example("fine", "x")
    with pytest.raises(DataError, match="wrong column count"):
        next(examples)


def test_read_text_keeps_the_whole_corpus(tmp_path):
    path = tmp_path / "corpus.txt.gz"
    with gzip.open(path, "wb") as f:
        f.write("\ufeffFirst Citizen:\r\nBefore we proceed\r\n\r\nany further.\n".encode())
    assert read_text(path) == "First Citizen:\nBefore we proceed\n\nany further.\n"


def test_parse_column():
    assert parse_column("0") == 0 and parse_column(" 12 ") == 12
    assert parse_column("text") == "text" and parse_column(3) == 3


# --- bad input -------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(DataError) as e:
        read_file(tmp_path / "nope.csv")
    assert str(e.value) == f"{tmp_path / 'nope.csv'}: no such file or folder"


def test_empty_file(tmp_path):
    path = write(tmp_path / "a.csv", "")
    with pytest.raises(DataError, match="a.csv: file is empty"):
        read_file(path)


def test_header_only_has_no_examples(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\n")
    with pytest.raises(DataError, match="a.csv: no examples found"):
        read_file(path)


def test_missing_column_lists_the_existing_ones(tmp_path):
    path = write(tmp_path / "a.csv", "title,body,label\nx,y,z\n")
    with pytest.raises(DataError) as e:
        read_file(path)
    assert str(e.value) == f"{path}:1: missing column 'text'; the header has: 'title', 'body', 'label'"


def test_missing_column_hints_at_the_delimiter(tmp_path):
    path = write(tmp_path / "a.csv", "text\tlabel\nx\ty\n")
    with pytest.raises(DataError, match="is the delimiter different"):
        read_file(path)


def test_wrong_column_count_names_the_row_start_line_after_a_quoted_newline(tmp_path):
    path = write(tmp_path / "a.csv", 'text,label\n"two\nlines",x\nthree,columns,here\n')
    with pytest.raises(DataError) as e:
        read_file(path)
    assert str(e.value) == f"{path}:4: wrong column count: expected 2 (as in the header), got 3"


def test_headerless_column_index_out_of_range(tmp_path):
    path = write(tmp_path / "a.csv", "1,x\n")
    expected = r"a.csv:1: column index 5 is out of range: rows have 2 columns \(0..1\)"
    with pytest.raises(DataError, match=expected):
        read_file(path, text_cols=5, label_col=0)


def test_column_names_for_a_headerless_table_is_a_config_error(tmp_path):
    path = write(tmp_path / "a.csv", "1,x\n")
    with pytest.raises(ConfigError, match="no header"):
        read_file(path, text_cols="text", label_col=0, header=False)


def test_empty_texts_are_skipped_with_one_warning(tmp_path, caplog):
    path = write(tmp_path / "a.csv", "text,label\nok,x\n  ,y\nfine,x\n,z\n")
    with caplog.at_level(logging.WARNING, logger=READERS):
        examples = read_file(path)
    assert [e.text for e in examples] == ["ok", "fine"]
    assert warnings_of(caplog) == [
        f"{path}: skipped 2 example(s) with empty text (the first at line 3)"  # no nonexistent --strict named
    ]


def test_empty_text_is_an_error_in_strict_mode(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\nok,x\n,y\n")
    with pytest.raises(DataError, match=r"a.csv:3: empty text"):
        read_file(path, strict=True)


def test_all_texts_empty_is_an_error(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\n,x\n")
    with pytest.raises(DataError, match="no examples found: all 1 had empty text"):
        read_file(path)


def test_empty_label_is_an_error(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\nhello,\n")
    with pytest.raises(DataError, match=r"a.csv:2: empty label"):
        read_file(path)


def test_undecodable_bytes_are_replaced_and_warned_once_with_the_first_line(tmp_path, caplog):
    path = tmp_path / "a.csv"
    path.write_bytes(b"text,label\ngood,x\ncaf\xe9,y\nna\xefve,y\n")
    with caplog.at_level(logging.WARNING, logger=READERS):
        examples = read_file(path)
    assert [e.text for e in examples] == ["good", "caf\ufffd", "na\ufffdve"]
    (message,) = warnings_of(caplog)
    assert message.startswith(f"{path}:3: bytes that are not valid UTF-8 were replaced by U+FFFD")


def test_invalid_json_line(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", label: "y"}\n')
    with pytest.raises(DataError, match=r"a.jsonl:2: invalid JSON: Expecting property name"):
        read_file(path)


def test_jsonl_missing_key_lists_the_keys(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"body": "a", "label": "x"}\n')
    with pytest.raises(DataError, match=r"a.jsonl:1: missing key 'text'; this line has: 'body', 'label'"):
        read_file(path)


def test_jsonl_non_string_text(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"text": ["a"], "label": "x"}\n')
    with pytest.raises(DataError, match="key 'text' must be a string"):
        read_file(path)


def test_unsupported_suffix(tmp_path):
    path = write(tmp_path / "a.xlsx", "x")
    with pytest.raises(DataError, match=r"unsupported file type '.xlsx'; expected .csv, .tsv, .jsonl or"):
        read_file(path)


def test_folder_without_class_subfolders(tmp_path):
    write(tmp_path / "a.txt", "loose file")
    with pytest.raises(DataError, match="expected one sub-folder per class"):
        read_file(tmp_path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "a.csv.gz"
    path.write_bytes(gzip.compress(b"text,label\n" + b"hello,x\n" * 1000)[:-20])
    with pytest.raises(DataError, match=r"a.csv.gz: cannot decompress .* truncated or corrupt"):
        read_file(path)


def test_read_text_of_a_folder_or_blank_file(tmp_path):
    with pytest.raises(DataError, match="got a folder"):
        read_text(tmp_path)
    with pytest.raises(DataError, match="file is empty"):
        read_text(write(tmp_path / "a.txt", "\n \n"))
