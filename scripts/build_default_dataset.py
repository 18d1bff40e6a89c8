"""Build rnnkit's bundled ``default`` dataset: WordNet 3.0 glosses labelled with their lexicographer file.

Each WordNet synset (a set of synonyms, one sense) has a gloss — a definition, often followed by quoted
example sentences — and belongs to one of 45 lexicographer files ("noun.animal", "verb.motion", ...). The
dataset is one row per synset: ``label`` = the lexicographer file, ``text`` = the definition without its
examples. So "a large carnivorous feline of the savanna" should come out ``noun.animal``.

Source: Debian's ``wordnet-base`` package (``apt-get install wordnet-base``), whose files
``/usr/share/wordnet/data.{noun,verb,adj,adv}`` hold one synset per line:

    offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] p_cnt [ptr...] [frames...] | gloss

Decisions (also in ``src/rnnkit/data/builtin/README.md``):

- Lexicographer files with fewer than 75 synsets (under ~8 test rows each) are merged:
  ``adj.ppl`` (participial adjectives) into ``adj.all``, and ``noun.Tops`` (the unique beginners) and
  ``noun.motive`` into ``noun.other``. 45 files become 43 labels.
- Rows whose (label, text) pair repeats an earlier row are dropped (e.g. 23 synsets are glossed
  "a variety of aster"), so one text cannot sit in both train and test with the same label.
- Split ~80/10/10 by the MD5 of the synset id (``<offset>-<pos>``, e.g. ``02121620-n``): deterministic,
  independent of row order and of the other synsets. Rows are written in order of that hash (a fixed shuffle).
- Files are gzip'd CSV (header ``label,text``) with the gzip timestamp set to 0, so a rebuild from the same
  WordNet gives byte-identical files.

Usage:
    python scripts/build_default_dataset.py [--wordnet-dir /usr/share/wordnet] [--out src/rnnkit/data/builtin]
"""

from __future__ import annotations

import argparse
import collections
import csv
import gzip
import hashlib
import io
import re
import shutil
from pathlib import Path

# WordNet's lexnames file (lexnames(5WN)): lex_filenum -> lexicographer file name.
LEXNAMES = [
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
    "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
    "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
    "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition",
    "verb.communication", "verb.competition", "verb.consumption", "verb.contact", "verb.creation",
    "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social", "verb.stative",
    "verb.weather", "adj.ppl",
]  # fmt: skip

# Lexicographer files too small to learn or measure (< 75 synsets in WordNet 3.0) -> the label they join.
MERGED = {"adj.ppl": "adj.all", "noun.Tops": "noun.other", "noun.motive": "noun.other"}

POS_FILES = ("noun", "verb", "adj", "adv")
SPLITS = (("train", 80), ("valid", 10), ("test", 10))  # percent of the hash range, in this order

_QUOTED = re.compile(r'"[^"]*(?:"|$)')  # an example sentence; an unclosed quote runs to the end
_SEPARATORS = re.compile(r"\s*([;:,])(?:\s*[;:,])*")  # "; ;" or " ," left where an example was
# What introduced an example that has just been removed: "...; e.g." or "as in".
_DANGLING = re.compile(r"(?:[\s;:,]*\b(?:e\.g\.|i\.e\.|as in|for example))+[\s;:,]*$")


def clean_gloss(gloss: str) -> str:
    """A WordNet gloss without its quoted examples and the separators they leave behind.

    >>> clean_gloss('showing a cheerful willingness to do favors for others; "the obliging waiter"  ')
    'showing a cheerful willingness to do favors for others'
    >>> clean_gloss('independent of order; as in e.g. "a x b = b x a"')
    'independent of order'
    >>> clean_gloss("(of a ball) not in play")
    '(of a ball) not in play'
    """
    text = _QUOTED.sub(" ", gloss)
    text = _SEPARATORS.sub(lambda m: m.group(1) + " ", text)
    text = _DANGLING.sub("", text)
    text = re.sub(r"\s+", " ", text)
    return text.strip(" ;:,")


def parse_synset(line: str, path: Path) -> tuple[str, str, str]:
    """One ``data.*`` line -> (synset id ``offset-pos``, lexicographer file name, cleaned gloss)."""
    head, sep, gloss = line.partition(" | ")
    fields = head.split()
    if not sep or len(fields) < 4 or not fields[1].isdigit():
        raise ValueError(f"{path}: not a synset line: {line[:80]!r}")
    offset, lex_filenum, ss_type = fields[0], int(fields[1]), fields[2]
    pos = "a" if ss_type == "s" else ss_type  # satellite adjectives are adjectives
    return f"{offset}-{pos}", LEXNAMES[lex_filenum], clean_gloss(gloss)


def read_wordnet(wordnet_dir: Path) -> list[tuple[str, str, str]]:
    """Every synset of the four ``data.*`` files as (synset id, label, text), merges applied."""
    rows = []
    for name in POS_FILES:
        path = wordnet_dir / f"data.{name}"
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("  "):  # the license header at the top of each file
                    continue
                synset_id, lexname, text = parse_synset(line.rstrip("\n"), path)
                if text:
                    rows.append((synset_id, MERGED.get(lexname, lexname), text))
    return rows


def split_of(synset_id: str) -> str:
    """``train``/``valid``/``test`` from the MD5 of the synset id (80/10/10)."""
    bucket = int(hashlib.md5(synset_id.encode("ascii")).hexdigest(), 16) % 100
    for split, percent in SPLITS:
        if bucket < percent:
            return split
        bucket -= percent
    raise AssertionError("SPLITS must add up to 100")


def write_csv_gz(path: Path, rows: list[tuple[str, str]]) -> None:
    """``label,text`` rows as a gzip'd CSV with a zero timestamp (reproducible bytes)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["label", "text"])
    writer.writerows(rows)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buffer.getvalue().encode("utf-8"))


def build(wordnet_dir: Path, out_dir: Path) -> dict[str, collections.Counter]:
    """Write ``default_{train,valid,test}.csv.gz`` and the license notice; return label counts per split."""
    rows = read_wordnet(wordnet_dir)
    rows.sort(key=lambda row: hashlib.md5(row[0].encode("ascii")).hexdigest())
    seen: set[tuple[str, str]] = set()
    splits: dict[str, list[tuple[str, str]]] = {split: [] for split, _ in SPLITS}
    for synset_id, label, text in rows:
        if (label, text) not in seen:
            seen.add((label, text))
            splits[split_of(synset_id)].append((label, text))
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, split_rows in splits.items():
        write_csv_gz(out_dir / f"default_{split}.csv.gz", split_rows)
    copy_license(out_dir / "WORDNET_LICENSE.txt")
    return {split: collections.Counter(label for label, _ in r) for split, r in splits.items()}


def copy_license(target: Path) -> None:
    """Ship WordNet's license notice, which must accompany every copy of the database."""
    for source in (Path("/usr/share/doc/wordnet-base/copyright"), Path("/usr/share/wordnet/LICENSE")):
        if source.exists():
            shutil.copyfile(source, target)
            return
    raise FileNotFoundError("WordNet's license notice not found; install the wordnet-base package")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wordnet-dir", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "src/rnnkit/data/builtin"
    )
    args = parser.parse_args()
    counts = build(args.wordnet_dir, args.out)
    labels = sorted(set().union(*counts.values()))
    for split, counter in counts.items():
        size = (args.out / f"default_{split}.csv.gz").stat().st_size
        print(f"{split:5s} {sum(counter.values()):7d} rows  {size / 1e6:5.2f} MB")
    smallest = sorted(counts["test"].items(), key=lambda kv: kv[1])[:3]
    print(f"{len(labels)} labels; smallest in test: {smallest}")


if __name__ == "__main__":
    main()
