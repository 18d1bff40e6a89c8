"""Build rnnkit's bundled word vectors: GloVe 6B, 50 dimensions, the 100,000 most frequent words, fp16.

Word-level classifiers start from these vectors by default (``--vectors auto``), so a fresh install needs
no download. The source is the standard GloVe text format (a word, then 50 numbers, per line), most
frequent words first, e.g. ``../shared/datasets/glove/glove.6B.50d.100k.txt.gz`` (the first 100,000 lines
of Stanford's ``glove.6B.50d.txt``).

Output: one safetensors file with a ``vectors`` tensor ``[V, 50]`` in float16 and the words, in the same
order, newline-joined in the header's metadata under ``words``. float16 keeps 3 significant digits — far
finer than the vectors' own noise — and halves the file (10 MB instead of 20 MB).

License: GloVe 6B is under the Open Data Commons Public Domain Dedication and License (ODC-PDDL 1.0);
``GLOVE_LICENSE.txt`` beside the file says so.

Usage:
    python scripts/build_glove.py [--source PATH] [--out src/rnnkit/data/builtin/glove.6B.50d.safetensors]
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "datasets" / "glove" / "glove.6B.50d.100k.txt.gz"
OUT = ROOT / "src" / "rnnkit" / "data" / "builtin" / "glove.6B.50d.safetensors"


def read_glove(path: Path, limit: int) -> tuple[list[str], np.ndarray]:
    """The first ``limit`` words and their vectors, skipping repeats and words with a newline."""
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            word, *values = line.rstrip("\n").split(" ")
            if word in seen or not values:
                continue
            seen.add(word)
            words.append(word)
            rows.append(np.asarray(values, dtype=np.float32))
            if len(words) == limit:
                break
    return words, np.stack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--words", type=int, default=100_000, help="keep the N most frequent words")
    args = parser.parse_args()
    words, vectors = read_glove(args.source, args.words)
    metadata = {"words": "\n".join(words)}  # one key: the header (a hash map) then always reads the same
    save_file({"vectors": vectors.astype(np.float16)}, str(args.out), metadata=metadata)
    print(f"{args.out}: {len(words):,} words × {vectors.shape[1]} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
