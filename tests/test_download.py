# ruff: noqa: E501
"""The AG News downloader against a local HTTP server, its parser and its cleaning."""

import collections
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest

from rnnkit import cli as cli_module
from rnnkit.data import download, read_examples
from rnnkit.data.download import clean_ag_news, fetch_ag_news, iter_ag_news
from rnnkit.data.readers import Example
from rnnkit.errors import DataError

# The raw format: class index 1-4, title, description; quoted, no header; the feed's remnants intact.
RAW = {
    "train": (
        '"3","Wall St. Bears Claw Back",'
        '"Reuters - Short-sellers, Wall Street #39;s dwindling\\band, are back."\n'
        '"2","Phelps Wins","ATHENS -- Michael Phelps won \\$1 million, a  quot;great quot; day."\n'
    ),
    "test": (
        '"1","Talks Fail","Leaders met  amp; talked &lt;b&gt;again&lt;/b&gt;."\n'
        '"4","New Chip","A chip for  #36;10, said US #36;9 &lt;INTC.O&gt;."\n'
    ),
}
SHARED = Path(__file__).resolve().parents[1].parent / "shared"  # beside the checkout, here and in CI
REAL_TEST = SHARED / "datasets" / "ag_news" / "original" / "test.csv"


class _Handler(http.server.BaseHTTPRequestHandler):
    mode = "ok"  # "ok"; "truncate": announce the full length, send half, close; "endless": never stop

    def do_GET(self):
        folder, _, name = self.path.rpartition("/")
        name = name.removesuffix(".csv")
        if folder != "/data/ag_news_csv" or name not in RAW:
            self.send_error(404)
            return
        if self.mode == "endless":  # a broken mirror: no length, and data without end
            self.send_response(200)
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"x" * 65536)
            except OSError:
                return
        body = RAW[name].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.mode == "truncate" else body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A local server for the raw files; the cache and checksums point at them."""
    handler = type("Handler", (_Handler,), {"mode": "ok"})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("RNNKIT_AG_NEWS_URL", f"http://127.0.0.1:{httpd.server_address[1]}/data/ag_news_csv")
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.delenv("RNNKIT_OFFLINE", raising=False)
    md5 = {split: hashlib.md5(text.encode()).hexdigest() for split, text in RAW.items()}
    monkeypatch.setattr(download, "AG_NEWS_MD5", md5)
    monkeypatch.setattr(download, "AG_NEWS_SHA256", dict.fromkeys(md5))  # recorded on download instead
    yield handler
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def offline(monkeypatch):
    """Point the download URL at a port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RNNKIT_AG_NEWS_URL", f"http://127.0.0.1:{port}/ag_news_csv")


def cache_files(tmp_path):
    return sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())


def test_download_verify_parse_and_clean(server, tmp_path):
    calls = []
    examples = read_examples("ag_news:test", progress=lambda done, total: calls.append((done, total)))
    assert examples == [
        Example("Talks Fail Leaders met & talked again.", "World"),
        Example("New Chip A chip for $10, said US$9 <INTC.O>.", "Sci/Tech"),
    ]
    size = len(RAW["test"].encode())
    assert calls[0] == (0, size) and calls[-1] == (size, size)
    assert (tmp_path / "cache" / "ag_news" / "test.csv").read_text() == RAW["test"]
    assert cache_files(tmp_path) == ["test.csv", "test.csv.sha256"]
    train = read_examples("ag_news")
    assert train[0].text.endswith("Short-sellers, Wall Street's dwindling band, are back.")
    assert train[1] == Example(
        'Phelps Wins ATHENS -- Michael Phelps won $1 million, a "great" day.', "Sports"
    )


def test_offline_with_cache_works(server, offline, tmp_path):
    target = tmp_path / "cache" / "ag_news" / "test.csv"
    target.parent.mkdir(parents=True)
    target.write_text(RAW["test"])
    assert [e.label for e in read_examples("ag_news:test")] == ["World", "Sci/Tech"]


def test_offline_without_cache_is_one_clear_line(server, offline, tmp_path):
    with pytest.raises(DataError) as e:
        read_examples("ag_news:test")
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"AG News (test) is not in the cache ({tmp_path / 'cache' / 'ag_news'})")
    assert "offline?" in message and message.endswith("or pass --data PATH to a local copy of the data")
    assert cache_files(tmp_path) == []


def test_offline_setting_forbids_the_network(server, monkeypatch):
    monkeypatch.setenv("RNNKIT_OFFLINE", "1")
    with pytest.raises(DataError, match="RNNKIT_OFFLINE is set; .* --data PATH"):
        fetch_ag_news("test")


def test_checksum_mismatch_keeps_nothing(server, monkeypatch, tmp_path):
    monkeypatch.setitem(download.AG_NEWS_MD5, "test", "0" * 32)
    with pytest.raises(DataError) as e:
        fetch_ag_news("test")
    assert "checksum mismatch" in str(e.value) and f"expected md5 {'0' * 32}, got " in str(e.value)
    assert cache_files(tmp_path) == []


def test_interrupted_transfer_keeps_nothing(server, tmp_path):
    server.mode = "truncate"
    size = len(RAW["test"].encode())
    expected = rf"interrupted after {size // 2:,} of {size:,} bytes .*nothing was saved"
    with pytest.raises(DataError, match=expected):
        fetch_ag_news("test")
    assert cache_files(tmp_path) == []


def test_http_error(server, monkeypatch, tmp_path):
    base = download.os.environ["RNNKIT_AG_NEWS_URL"]
    monkeypatch.setenv("RNNKIT_AG_NEWS_URL", base.replace("/data/", "/moved/"))
    expected = r"download of http://127.0.0.1:\d+/moved/ag_news_csv/test.csv failed: HTTP 404"
    with pytest.raises(DataError, match=expected):
        fetch_ag_news("test")
    assert cache_files(tmp_path) == []


def test_cli_download_then_list(server, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli_module.main(["datasets", "--download", "ag_news"])
    assert e.value.code == 0
    assert cache_files(tmp_path) == ["test.csv", "test.csv.sha256", "train.csv", "train.csv.sha256"]
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ag_news")]
    assert row.endswith("yes")


def test_cli_offline_error_is_one_line_and_exit_2(server, offline, capsys):
    with pytest.raises(SystemExit) as e:
        cli_module.main(["datasets", "--download", "ag_news"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: AG News (train) is not in the cache") and err.count("\n") == 1


def test_bad_class_index_names_file_and_line(tmp_path):
    path = tmp_path / "raw.csv"
    path.write_text('"1","a","b"\n"5","c","d"\n')
    first = next(iter_ag_news(path))
    assert (first.label, first.path, first.line) == ("World", str(path), 1)
    with pytest.raises(DataError, match=r"raw.csv:2: class index must be 1, 2, 3 or 4, got '5'"):
        list(iter_ag_news(path))


def test_wrong_column_count(tmp_path):
    path = tmp_path / "raw.csv"
    path.write_text('"1","only a title"\n')
    with pytest.raises(DataError, match=r"raw.csv:1: wrong column count: expected 3"):
        list(iter_ag_news(path))


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Exxon #39;s", "Exxon's"),
        ("said  quot;no quot; today", 'said "no" today'),
        ("AT amp;T and Johnson  amp; Johnson", "AT&T and Johnson & Johnson"),
        ("the  #36;10 prize", "the $10 prize"),
        ("costs \\$7.1 billion, US\\$520mil", "costs $7.1 billion, US$520mil"),
        ("a second\\team of\\\\rocketeers", "a second team of rocketeers"),
        ("them  #151; online", "them — online"),
        ("Sony #146;s player", "Sony’s player"),
        ('Staples &lt;A HREF="http://x.com/q?t=SPLS.O"&gt;SPLS.O&lt;/A&gt; rose', "Staples SPLS.O rose"),
        ("Dell Inc. &lt;DELL.O&gt;, the", "Dell Inc. <DELL.O>, the"),
        ("India News  gt; Guwahati", "India News > Guwahati"),
        ("a clamp; not an entity", "a clamp; not an entity"),
    ],
)
def test_cleaning(raw, clean):
    assert clean_ag_news(raw) == clean


@pytest.mark.skipif(not REAL_TEST.is_file(), reason="shared AG News test file not present")
def test_real_test_file():
    assert hashlib.md5(REAL_TEST.read_bytes()).hexdigest() == download.AG_NEWS_MD5["test"]
    examples = list(iter_ag_news(REAL_TEST))
    assert len(examples) == 7_600
    assert collections.Counter(e.label for e in examples) == dict.fromkeys(download.AG_NEWS_LABELS, 1_900)
    assert not [e.text for e in examples if any(s in e.text for s in ("#39;", "quot;", "#36;", "\\", "&lt;"))]


# --- issue 16: size cap, SHA-256, the cache verified on use ----------------------------------------------------
def test_an_endless_mirror_is_cut_off_at_the_size_cap(server, tmp_path, monkeypatch):
    server.mode = "endless"
    monkeypatch.setitem(download.AG_NEWS_MAX_BYTES, "test", 1_000_000)
    with pytest.raises(DataError, match=r"stopped: .* more than the 1,000,000 expected at most; nothing was saved"):
        read_examples("ag_news:test")
    assert cache_files(tmp_path) == []


def test_an_announced_size_over_the_cap_is_refused_at_once(server, tmp_path, monkeypatch):
    monkeypatch.setitem(download.AG_NEWS_MAX_BYTES, "test", 10)
    with pytest.raises(DataError, match=r"stopped: \d+ bytes is more than the 10 expected"):
        read_examples("ag_news:test")
    assert cache_files(tmp_path) == []


def test_a_pinned_sha256_mismatch_keeps_nothing(server, tmp_path, monkeypatch):
    monkeypatch.setitem(download.AG_NEWS_SHA256, "test", "0" * 64)
    with pytest.raises(DataError, match="expected SHA-256 0000"):
        read_examples("ag_news:test")
    assert cache_files(tmp_path) == []


def test_the_cache_is_verified_on_use(server, tmp_path):
    read_examples("ag_news:test")
    cached = tmp_path / "cache" / "ag_news" / "test.csv"
    cached.write_text(RAW["test"].replace("Talks", "Tulks"))
    with pytest.raises(DataError, match="the cached file changed since it was downloaded .*delete it"):
        read_examples("ag_news:test")
    cached.unlink()
    (tmp_path / "cache" / "ag_news" / "test.csv.sha256").unlink()
    assert [e.label for e in read_examples("ag_news:test")] == ["World", "Sci/Tech"]


def test_the_pinned_sha256_of_the_real_test_file():
    if REAL_TEST.is_file():
        assert hashlib.sha256(REAL_TEST.read_bytes()).hexdigest() == download.AG_NEWS_SHA256["test"]
    assert download.AG_NEWS_SHA256["test"] is not None
