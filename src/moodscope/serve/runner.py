"""Running the app under uvicorn: the listening socket, the start-up line, the model loaded before serving."""

from __future__ import annotations

import ipaddress
import socket
import sys

from ..errors import MoodscopeError, shown_path

#: the names a browser may use for a server bound to loopback (the Host check refuses the others)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: a free one); one-line :class:`MoodscopeError` when it cannot be."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as e:
        raise MoodscopeError(f"--host {shown_path(host)}: not an address of this machine ({e})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise MoodscopeError(f"{shown_path(host)}:{port}: cannot listen there ({e.strerror or e})") from None
    sock.set_inheritable(True)
    return sock


def is_loopback(sock: socket.socket) -> bool:
    return ipaddress.ip_address(sock.getsockname()[0].split("%")[0]).is_loopback


def url_of(sock: socket.socket) -> str:
    """The URL to open: the bound address, or 127.0.0.1 for a wildcard address (0.0.0.0, ::)."""
    host, port = sock.getsockname()[:2]
    address = ipaddress.ip_address(host.split("%")[0])
    if address.is_unspecified:
        host = "127.0.0.1" if address.version == 4 else "::1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def run(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    model=None,
    device: str = "cpu",
    precision: str = "float32",
    max_mb: float = 100,
    max_minutes: float = 20,
    queue: int = 8,
    workers: int = 1,
    allow_hosts: tuple[str, ...] = (),
    verbose: bool = False,
    frontend: str | None = None,
) -> int:
    """Serve until interrupted (Ctrl+C, SIGTERM); returns the exit code.

    The options are checked, the port is bound and the model is loaded before the start-up line is printed, so
    that each of those problems is one line and nothing listens half-ready. Bound to loopback, the server answers
    only requests whose Host is a loopback name or one of ``allow_hosts`` (a reverse proxy's public name).
    """
    import uvicorn

    from .app import check_options, create_app

    if not 0 <= port <= 65535:
        raise MoodscopeError(f"--port {port}: not a port number (0..65535; 0 picks a free one)")
    options = dict(max_mb=max_mb, max_minutes=max_minutes, queue=queue, workers=workers)
    check_options(**options)  # before anything is bound or loaded
    sock = listen(host, port)
    try:
        loopback = is_loopback(sock)
        app = create_app(
            model,
            device=device,
            precision=precision,
            frontend=frontend,
            allowed_hosts=[*LOOPBACK_NAMES, host, *allow_hosts] if loopback else None,
            **options,
        )
        state = app.state.moodscope
        state.start()  # the model, once, before serving (a bad model file: one line, exit 2)
        url = url_of(sock)
        if not loopback:
            print(
                f"moodscope serve: warning: listening on {shown_path(host)}: reachable from the network, "
                "and anyone who reaches this port can make it work (no authentication; see the README)",
                file=sys.stderr,
            )
        print(
            f"moodscope serve: open {url}  (model {state.loaded} on {state.predictor.device}; Ctrl+C stops)",
            flush=True,
        )
        config = uvicorn.Config(
            app,
            log_level="info" if verbose else "warning",
            access_log=verbose,
            timeout_graceful_shutdown=10,
            server_header=False,
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    return 0
