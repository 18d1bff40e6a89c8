"""Build rnnkit's bundled ``shakespeare`` corpus: Tiny Shakespeare, gzip'd, for character language models.

Tiny Shakespeare (Karpathy's char-rnn corpus, public domain text) split 90/10 into ``train.txt`` / ``val.txt``
is copied as-is (no cleaning, every character kept) into ``shakespeare_train.txt.gz`` /
``shakespeare_valid.txt.gz``, with the gzip timestamp set to 0 so a rebuild gives byte-identical files.

Usage:
    python scripts/build_shakespeare.py [--source ../shared/datasets/tinyshakespeare]
                                        [--out src/rnnkit/data/builtin]
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPLITS = {"train": "train.txt", "valid": "val.txt"}  # our split name -> the source file


def build(source: Path, out_dir: Path) -> dict[str, int]:
    """Write ``shakespeare_{train,valid}.txt.gz``; return the number of characters in each."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for split, name in SPLITS.items():
        text = (source / name).read_text(encoding="utf-8")
        target = out_dir / f"shakespeare_{split}.txt.gz"
        with open(target, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(text.encode("utf-8"))
        sizes[split] = len(text)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared/datasets/tinyshakespeare")
    parser.add_argument("--out", type=Path, default=ROOT / "src/rnnkit/data/builtin")
    args = parser.parse_args()
    for split, chars in build(args.source, args.out).items():
        size = (args.out / f"shakespeare_{split}.txt.gz").stat().st_size
        print(f"{split:5s} {chars:9d} characters  {size / 1e6:5.2f} MB")


if __name__ == "__main__":
    main()
