"""AG News, the lesson's dataset: download once into the cache, verify, parse and clean.

The two CSV files torchtext's ``AG_NEWS`` used are fetched from :data:`AG_NEWS_URL` (override it with
the ``RNNKIT_AG_NEWS_URL`` environment variable) into ``$RNNKIT_CACHE/ag_news/`` (default
``~/.cache/rnnkit``). A download is checked against torchtext's md5 and, where it is pinned here, a
SHA-256 (MD5 alone no longer proves a file was not tampered with); it is capped in size
(:data:`AG_NEWS_MAX_BYTES`: an endless or wrong mirror is cut off), and lands at its final path only when
complete and correct, with its SHA-256 beside it (``train.csv.sha256``). Every later use checks the cached
file against that digest, so a damaged or replaced cache is an error rather than silently wrong data;
later runs work offline. ``RNNKIT_OFFLINE=1`` forbids the network.

The raw format has no header and three quoted columns: class index 1–4, title, description. The text
is title + " " + description, cleaned of the news feed's remnants (HTML entities whose ``&`` became a
space, ``\\$`` for ``$``, backslashes where lines were joined, escaped HTML tags):

>>> clean_ag_news(r"Oil tops \\$50 or  #36;1 a gallon at Exxon #39;s\\pumps &lt;XOM.N&gt;")
"Oil tops $50 or $1 a gallon at Exxon's pumps <XOM.N>"
"""

from __future__ import annotations

import hashlib
import html
import http.client
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from .._io import atomic_open
from ..errors import DataError
from .readers import Example, iter_rows

AG_NEWS_URL = "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv"
"""Folder holding ``train.csv`` and ``test.csv``; ``RNNKIT_AG_NEWS_URL`` overrides it."""

AG_NEWS_MD5 = {"train": "b1a00f826fdfbd249f79597b59e1dc12", "test": "d52ea96a97a2d943681189a97654912d"}
"""torchtext's published checksums of the two files."""

AG_NEWS_SHA256 = {
    "train": None,  # not pinned yet: recorded from the first download that matches the MD5
    "test": "521465c2428ed7f02f8d6db6ffdd4b5447c1c701962353eb2c40d548c3c85699",
}
"""SHA-256 of the two files where known (computed from a copy that matches torchtext's MD5)."""

AG_NEWS_MAX_BYTES = {"train": 64 * 2**20, "test": 8 * 2**20}
"""Largest download accepted per split (the files are 29 MB and 1.9 MB)."""

AG_NEWS_LABELS = ("World", "Sports", "Business", "Sci/Tech")
"""Class names in the order of the file's class index 1..4."""

AG_NEWS_SIZES = {"train": 120_000, "test": 7_600}
"""Examples per split (30,000 and 1,900 per class)."""

Progress = Callable[[int, int | None], None]
"""``progress(bytes_done, bytes_total)``; ``bytes_total`` is ``None`` when the server does not say."""

_CHUNK = 1 << 20


def cache_dir() -> Path:
    """Where downloads are kept: ``$RNNKIT_CACHE``, else ``~/.cache/rnnkit``."""
    return Path(os.environ.get("RNNKIT_CACHE") or Path.home() / ".cache" / "rnnkit").expanduser()


def ag_news_path(split: str) -> Path:
    """The cached raw file of an AG News split (``"train"`` or ``"test"``), whether or not it exists yet."""
    if split not in AG_NEWS_MD5:
        raise DataError(f"AG News has splits train and test, got {split!r}")
    return cache_dir() / "ag_news" / f"{split}.csv"


def fetch_ag_news(split: str = "train", *, progress: Progress | None = None, md5: str | None = None) -> Path:
    """The path of an AG News split in the cache, downloading and verifying it first if needed.

    Args:
        split: ``"train"`` or ``"test"``.
        progress: called as ``progress(bytes_done, bytes_total)`` while downloading.
        md5: expected checksum; default :data:`AG_NEWS_MD5` ``[split]``.

    Returns:
        The cached file (raw format; read it with :func:`iter_ag_news`).

    Raises:
        DataError: not cached and the download is impossible (offline), fails, is interrupted, or
            has the wrong checksum. Nothing is left at the cached path in those cases.
    """
    path = ag_news_path(split)
    if path.is_file():
        verify_cached(path, md5=md5 or AG_NEWS_MD5[split], sha256=AG_NEWS_SHA256.get(split))
        return path
    base = os.environ.get("RNNKIT_AG_NEWS_URL") or AG_NEWS_URL
    url = f"{base.rstrip('/')}/{split}.csv"
    missing = f"AG News ({split}) is not in the cache ({path.parent}) and cannot be downloaded"
    suggestion = "connect to the internet once, or pass --data PATH to a local copy of the data"
    if os.environ.get("RNNKIT_OFFLINE", "") not in ("", "0"):
        raise DataError(f"{missing}: RNNKIT_OFFLINE is set; {suggestion}")
    try:
        return download(
            url,
            path,
            md5=md5 or AG_NEWS_MD5[split],
            sha256=AG_NEWS_SHA256.get(split),
            max_bytes=AG_NEWS_MAX_BYTES.get(split),
            progress=progress,
        )
    except UnreachableError as e:
        raise DataError(f"{missing}: offline? ({e.reason}); {suggestion}") from None


class UnreachableError(DataError):
    """The server could not be reached at all: no connection, unknown host, refused, or timed out."""

    def __init__(self, url: str, reason: object):
        self.reason = str(reason)
        super().__init__(f"cannot reach {url}: {self.reason}")


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _file_digests(path: Path) -> tuple[str, str]:
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            md5.update(chunk)
            sha256.update(chunk)
    return md5.hexdigest(), sha256.hexdigest()


def verify_cached(path: str | os.PathLike, *, md5: str | None = None, sha256: str | None = None) -> None:
    """Check a cached download before it is used: its SHA-256 against ``sha256`` (or the digest recorded
    beside it when it was downloaded), and its MD5 when neither exists. A mismatch raises
    :class:`DataError` telling how to download it again."""
    path = Path(path)
    recorded = _digest_path(path)
    expected = sha256
    if expected is None and recorded.is_file():
        expected = recorded.read_text(encoding="utf-8").strip() or None
    found_md5, found_sha256 = _file_digests(path)
    if expected is not None:
        ok, what = found_sha256 == expected.lower(), f"SHA-256 {found_sha256}, expected {expected.lower()}"
    elif md5 is not None:
        ok, what = found_md5 == md5.lower(), f"md5 {found_md5}, expected {md5.lower()}"
    else:
        return
    if not ok:
        raise DataError(
            f"the cached file changed since it was downloaded ({what}); delete it to download it again",
            path=path,
        )


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    max_bytes: int | None = None,
    progress: Progress | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to ``dest`` atomically: complete and verified, or not there at all.

    Args:
        url: ``http(s)://`` or ``file://`` address.
        dest: final path; its folder is created.
        md5: expected hex checksum; a mismatch raises and keeps nothing.
        sha256: expected SHA-256 as well (None: not pinned); the digest found is written beside ``dest``
            (``dest.sha256``) for :func:`verify_cached`.
        max_bytes: stop (keeping nothing) once more than this many bytes arrive, or at once when the
            server announces more.
        progress: called as ``progress(bytes_done, bytes_total)`` after each chunk.
        timeout: seconds to wait for the server on connect and on each read.

    Returns:
        ``dest`` as a ``Path``.

    Raises:
        UnreachableError: the server cannot be reached (a :class:`DataError`).
        DataError: HTTP error, interrupted transfer, checksum mismatch, or an unwritable folder.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        message = f"cannot create the download folder ({e}); set RNNKIT_CACHE to a writable one"
        raise DataError(message) from None
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise DataError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise UnreachableError(url, getattr(e, "reason", e)) from None
    with response, atomic_open(dest, "wb") as out:
        total = _content_length(response)
        if max_bytes is not None and total is not None and total > max_bytes:
            raise _too_big(url, total, max_bytes)
        digest, digest256 = hashlib.md5(), hashlib.sha256()
        done = 0
        if progress:
            progress(0, total)
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (http.client.HTTPException, OSError) as e:
                raise _interrupted(url, done, total, e) from None
            if not chunk:
                break
            out.write(chunk)
            digest.update(chunk)
            digest256.update(chunk)
            done += len(chunk)
            if max_bytes is not None and done > max_bytes:
                raise _too_big(url, done, max_bytes)
            if progress:
                progress(done, total)
        if total is not None and done != total:
            raise _interrupted(url, done, total, "connection closed early")
        if md5 and digest.hexdigest() != md5.lower():
            raise DataError(
                f"checksum mismatch for {url}: expected md5 {md5.lower()}, got {digest.hexdigest()}; "
                "nothing was saved (the file on the server differs from the one expected)"
            )
        if sha256 and digest256.hexdigest() != sha256.lower():
            raise DataError(
                f"checksum mismatch for {url}: expected SHA-256 {sha256.lower()}, "
                f"got {digest256.hexdigest()}; nothing was saved (the file on the server differs from the "
                "one expected)"
            )
        with atomic_open(_digest_path(dest), "w") as f:  # before the file itself lands: never one without
            f.write(digest256.hexdigest() + "\n")
    return dest


def _too_big(url: str, size: int, limit: int) -> DataError:
    return DataError(
        f"download of {url} stopped: {size:,} bytes is more than the {limit:,} expected at most; nothing was "
        "saved (a wrong or broken mirror?)"
    )


def _content_length(response) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _interrupted(url: str, done: int, total: int | None, reason: object) -> DataError:
    of = f" of {total:,}" if total is not None else ""
    return DataError(
        f"download of {url} was interrupted after {done:,}{of} bytes ({reason}); nothing was saved, try again"
    )


# One HTML entity whose "&" the feed replaced by a space (or kept): " #39;", "&lt;", " amp;", "quot;".
_ENTITY = re.compile(r"(?:&|\s|(?<![A-Za-z0-9]))(?:#(\d{1,7})|(amp|quot|lt|gt|apos|nbsp));")
# An escaped HTML tag, once unescaped: <b>, </A>, <A HREF="...">, <br />. Not tickers like <XOM.N>.
_TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)(?:\s[^<>]*)?/?>")
_BREAKING_TAGS = {"br", "p", "div", "li", "tr"}  # these separate words; other tags (<b>, <a>) sit inside text
_BACKSLASHES = re.compile(r"\\+")
_SPACES = re.compile(r"\s+")


def _entity(match: re.Match) -> str:
    number, name = match.groups()
    if name:
        return html.unescape(f"&{name};")
    code = int(number)
    if 128 <= code <= 159:  # Windows-1252 code points the feed wrote as numbers: #146; is ’, #151; is —
        return bytes([code]).decode("cp1252", errors="replace")
    return chr(code) if code < 0x110000 else "\ufffd"


def clean_ag_news(text: str) -> str:
    """Undo the AG News feed's escaping and collapse whitespace (see the module docstring).

    >>> clean_ag_news("AT amp;T  quot;wins quot; -- see &lt;b&gt;here&lt;/b&gt;\\\\more")
    'AT&T "wins" -- see here more'
    """
    text = text.replace("\\$", "$")
    text = _ENTITY.sub(_entity, text)
    text = _TAG.sub(lambda m: " " if m.group(1).lower() in _BREAKING_TAGS else "", text)
    text = _BACKSLASHES.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def iter_ag_news(path: str | os.PathLike, *, clean: bool = True) -> Iterator[Example]:
    """Stream the examples of a raw AG News file (class index 1-4, title, description; no header).

    Args:
        path: a file in the raw format, e.g. from :func:`fetch_ag_news`.
        clean: undo the feed's escaping with :func:`clean_ag_news`; ``False`` keeps the text as stored
            (title + " " + description).

    Returns:
        An iterator of :class:`~rnnkit.data.readers.Example` labelled World, Sports, Business, Sci/Tech.

    Raises:
        DataError: a row without 3 columns or with a class index outside 1-4 (file and line named).
    """
    for line, fields in iter_rows(path):
        if len(fields) != 3:
            expected = "expected 3 (class index, title, description)"
            raise DataError(f"wrong column count: {expected}, got {len(fields)}", path, line)
        index, title, description = fields
        if index.strip() not in ("1", "2", "3", "4"):
            raise DataError(f"class index must be 1, 2, 3 or 4, got {index!r}", path, line)
        text = f"{title} {description}"
        yield Example(clean_ag_news(text) if clean else text, AG_NEWS_LABELS[int(index) - 1], str(path), line)
