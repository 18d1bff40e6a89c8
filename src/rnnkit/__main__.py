"""``python -m rnnkit`` — the same as the ``rnnkit`` command (``torchrun -m rnnkit train ...`` uses this)."""

from .cli import main

if __name__ == "__main__":
    main()
