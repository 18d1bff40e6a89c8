"""How ``rnnkit serve`` runs: :class:`ServeSettings`, kept apart from the app so that the command line can
offer its options without importing FastAPI (the ``serve`` extra)."""

from __future__ import annotations

import ipaddress
import math
import re
import socket
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["ServeSettings", "check_port_free"]

# field → highest value: bounds that keep a typo from becoming an allocation or a wait without end
_UPPER = {
    "port": 65_535,
    "max_batch": 4_096,
    "max_texts": 100_000,
    "max_chars": 10_000_000,
    "max_body_bytes": 1 << 30,
    "max_generate_length": 1_000_000,
    "max_concurrent_jobs": 1_024,
    "threads": 1_024,
    "max_connections": 100_000,
}
_SECONDS = {  # field → highest value of a duration
    "max_wait_ms": 10_000.0,
    "graceful_timeout": 3_600.0,
    "timeout_keep_alive": 3_600.0,
}
_HOSTNAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+")


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
    timeout_keep_alive: float = 5.0  # seconds an idle keep-alive connection stays open
    max_connections: int = 1_000  # most connections at once; more are answered 503 at once
    allowed_hosts: str | None = None  # Host headers to answer, comma-separated (default: --host, localhost)

    def __post_init__(self) -> None:
        from ..config import short_repr

        for name, high in _UPPER.items():
            value, label = getattr(self, name), f"{name} (--{name.replace('_', '-')})"
            if name == "threads" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{label} must be a positive integer, got {short_repr(value)}")
            if value > high:
                raise ConfigError(f"{label} must be at most {high:,}, got {short_repr(value)}")
        for name, high in _SECONDS.items():
            value, label = getattr(self, name), f"{name} (--{name.replace('_', '-')})"
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or not 0 <= value <= high:
                raise ConfigError(f"{label} must be a finite number in 0..{high:g}, got {short_repr(value)}")
        self.host = _check_host(self.host)
        if not re.fullmatch(r"auto|cpu|cuda(:\d{1,4})?", str(self.device)):
            raise ConfigError(f"device (--device) must be auto, cpu, cuda or cuda:N; got {self.device!r}")
        for host in self.hosts_allowed():
            if host != "*" and not _HOSTNAME.fullmatch(host.strip("[]")) and not _is_ip(host.strip("[]")):
                raise ConfigError(f"allowed_hosts (--allowed-hosts): {host!r} is not a host name")

    def hosts_allowed(self) -> list[str]:
        """The Host header values (without port) the server answers: ``--allowed-hosts``, else the bound
        host, ``localhost``, ``127.0.0.1`` and ``::1`` (``*``: any). A server bound to every interface
        (0.0.0.0) answers any Host unless ``--allowed-hosts`` says otherwise."""
        if self.allowed_hosts is not None:
            return [h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()]
        if self.host in ("0.0.0.0", "::"):
            return ["*"]
        return sorted({self.host.lower(), "localhost", "127.0.0.1", "::1"})


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _check_host(host: object) -> str:
    """``host`` if it is an IP address or a well-formed host name; else :class:`ConfigError`."""
    if not isinstance(host, str) or not host or (not _is_ip(host) and not _HOSTNAME.fullmatch(host)):
        raise ConfigError(f"host (--host) must be an IP address or a host name, got {host!r}")
    return host


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`ConfigError` unless ``host:port`` can be listened on now (checked before the server
    announces itself, so a port in use is one line instead of a failure after "serving on")."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, ValueError) as e:
        raise ConfigError(f"host (--host) {host!r} cannot be resolved ({e})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as e:
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
