"""Serving the console with uvicorn: in the foreground (``aura console``) or
on a background thread beside a runtime (``aura worker --console``,
``aura.serve_console(rt)``)."""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from typing import Any, Self

import uvicorn

from ...engine._place import Place
from ._app import create_app
from ._auth import new_token
from ._source import ConsoleSource

DEFAULT_PORT = 8765


class ConsoleServer:
    """The web console of one data directory or store.

    ``place``: where the missions are (a :class:`Place`, a data directory
    or a store URL), or ``runtime``: a running :class:`aura.Runtime`, whose
    open log the console reads (and whose supervision tree it shows).
    ``port=0`` picks a free port; ``url`` carries the access token."""

    def __init__(
        self,
        place: Place | str | None = None,
        *,
        runtime: Any = None,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        token: str | None = None,
        read_only: bool = False,
    ) -> None:
        if runtime is not None:
            self.source = ConsoleSource(
                runtime.place, store=runtime.store, runtime=runtime, read_only=read_only
            )
        else:
            if place is None:
                raise ValueError("ConsoleServer needs a place or a runtime")
            where = place if isinstance(place, Place) else Place.of(place)
            self.source = ConsoleSource(where, read_only=read_only)
        self.token = token or new_token()
        self.app = create_app(self.source, self.token)
        self.host = host
        try:
            self._socket = socket.create_server(
                (host, port), family=_family(host), reuse_port=False
            )
        except OSError:
            self.source.close()
            raise
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            timeout_graceful_shutdown=1,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The URL to open: it carries the access token once."""
        return f"{self.base_url}/?token={self.token}"

    def start(self) -> Self:
        """Serve on a background thread (returns once it accepts connections;
        a server already started is returned as it is)."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        ready = threading.Event()
        while not self._server.started:  # uvicorn has no start callback: look every 10 ms
            if not self._thread.is_alive():
                raise RuntimeError(f"the console could not start on {self.base_url}")
            ready.wait(0.01)
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (Ctrl-C)."""
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self.close()

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.close()

    def close(self) -> None:
        self._socket.close()
        self.source.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _family(host: str) -> socket.AddressFamily:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return socket.AF_INET


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def announce(server: ConsoleServer, out: Any = sys.stdout) -> None:
    print(f"aura console on {server.source.where}", file=out)
    print(f"  open {server.url}", file=out)
    if not is_loopback(server.host):
        print(
            f"  bound to {server.host}: reachable from other hosts; the token is required "
            "on every request, keep it secret",
            file=out,
        )
    if server.source.read_only:
        print("  read-only: actions are disabled", file=out)
    out.flush()
