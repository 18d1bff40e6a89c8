"""How ``rnnkit serve`` runs: :class:`ServeSettings`, kept apart from the app so that the command line can
offer its options without importing FastAPI (the ``serve`` extra)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["ServeSettings"]


@dataclass
class ServeSettings:
    """How ``rnnkit serve`` runs; every field is also a command-line option (``--max-batch`` …)."""

    host: str = "127.0.0.1"  # interface to listen on; 0.0.0.0 opens the server to the network
    port: int = 8000  # TCP port
    backend: str = "eager"  # eager (PyTorch), onnx (ONNX Runtime) or torchscript
    device: str = "auto"  # eager backend's device: auto, cpu, cuda or cuda:N
    max_batch: int = 32  # most texts in one forward pass (1: no micro-batching)
    max_wait_ms: float = 5.0  # how long a text waits for others to share its forward pass
    max_texts: int = 64  # most texts in one request
    max_chars: int = 10_000  # most characters in one text (or prime)
    max_body_bytes: int = 1_000_000  # largest request body, in bytes
    max_generate_length: int = 2_000  # most tokens one /v1/generate request may ask for
    max_concurrent_jobs: int = 2  # generations and inspections running at once (each in its own thread)
    threads: int | None = None  # CPU threads for inference, PyTorch's and ONNX Runtime's (None: default)
    graceful_timeout: float = 30.0  # seconds in-flight requests get to finish when the server stops

    def __post_init__(self) -> None:
        positive = (
            "port",
            "max_batch",
            "max_texts",
            "max_chars",
            "max_body_bytes",
            "max_generate_length",
            "max_concurrent_jobs",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.max_wait_ms < 0 or self.graceful_timeout < 0:
            raise ConfigError(
                f"max_wait_ms and graceful_timeout must be ≥ 0, "
                f"got {self.max_wait_ms} and {self.graceful_timeout}"
            )
