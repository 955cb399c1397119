"""A fault-injecting HTTP proxy for tests: S3 that fails the way S3 really fails.

It sits on loopback between archivist (`ARCHIVIST_S3_ENDPOINT_URL` pointed at it) and the
moto server, forwards every request unchanged, and for the first N requests matching a
rule (method and a path pattern) answers instead with a fault:

- `500`   : S3's InternalError, with S3's XML error body;
- `503`   : 503 SlowDown ("Please reduce your request rate."), S3's throttling answer;
- `reset` : reads part of the request body, then resets the connection (a PUT cut mid-upload:
            the object never reaches the server, as with a dropped connection);
- `delay` : waits `seconds` before forwarding (a slow answer; past the client's read
            timeout it is a timeout).

Bounded: every rule fires a finite number of times, every socket has a timeout, and the
proxy serves only 127.0.0.1. It records what it saw (`log`) so tests can count attempts.
"""

from __future__ import annotations

import http.client
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

Fault = Literal["500", "503", "reset", "delay"]

_ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "SlowDown", "Please reduce your request rate."),
}
SOCKET_TIMEOUT = 30.0
_HOP_HEADERS = ("transfer-encoding", "connection", "content-length", "server", "date")


@dataclass
class Rule:
    """Answer the first `times` requests whose method is `method` and whose path matches the
    regular expression `path` with `fault`."""

    fault: Fault
    method: str = "PUT"
    path: str = ".*"
    times: int = 1
    seconds: float = 0.0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.fired < self.times and method == self.method and re.search(self.path, path) is not None


@dataclass
class Seen:
    method: str
    path: str
    fault: str | None
    at: float = field(default_factory=time.monotonic)


class FaultProxy:
    """The proxy, started on a free loopback port (`url`); `with FaultProxy(upstream) as p:`."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"the fault proxy forwards to loopback only, not {upstream}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.rules: list[Rule] = []
        self.log: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def faults(self) -> list[Seen]:
        """The requests the proxy answered with a fault."""
        return [s for s in self.log if s.fault]

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _decide(self, method: str, path: str) -> Rule | None:
        with self._lock:
            rule = next((r for r in self.rules if r.matches(method, path)), None)
            if rule is not None:
                rule.fired += 1
            self.log.append(Seen(method, path, rule.fault if rule else None))
            return rule


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = SOCKET_TIMEOUT

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _any(self) -> None:
            rule = proxy._decide(self.command, self.path)
            if rule is not None and rule.fault == "reset":
                self._reset()
                return
            body = self._body()
            if rule is not None and rule.fault in _ERRORS:
                self._error(rule.fault)
                return
            if rule is not None and rule.fault == "delay":
                time.sleep(rule.seconds)
            self._forward(body)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", ""):
                chunks = []
                for _ in range(1_000_000):  # bounded: a body of at most a million chunks
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _reset(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(min(length // 2, 64 * 1024))
            # SO_LINGER 0: close() sends RST, as a dropped connection does.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def _error(self, fault: str) -> None:
            status, code, message = _ERRORS[fault]
            resource = self.path.split("?", 1)[0]
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message}</Message>"
                f"<Resource>{resource}</Resource><RequestId>fault-proxy</RequestId></Error>"
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.close_connection = True

        def _forward(self, body: bytes) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding",)}
            if body or self.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=SOCKET_TIMEOUT)
            try:
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status, answer.reason)
                for key, value in answer.getheaders():
                    if key.lower() not in _HOP_HEADERS:
                        self.send_header(key, value)
                if self.command != "HEAD" or answer.getheader("Content-Length") is None:
                    self.send_header("Content-Length", str(len(data)))
                else:
                    self.send_header("Content-Length", answer.getheader("Content-Length", "0"))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                upstream.close()
            self.close_connection = True

    return Handler


# -- other faults: a disk that fills, a warehouse that turns read-only, a database that goes away --


class MountNotPermittedError(RuntimeError):
    """This machine will not let the tests mount a small file system (not root, no
    CAP_SYS_ADMIN, a container without mount rights)."""


@contextmanager
def small_disk(path: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` for the block (unmounted after, whatever happens)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        raise MountNotPermittedError(f"cannot mount a tmpfs at {path}: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def remount(path: Path, mode: Literal["ro", "rw"]) -> None:
    """Make the mounted file system at `path` read-only or writable again (root ignores
    file modes, so a read-only warehouse has to be a read-only mount)."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True, capture_output=True, timeout=30)


def fill(path: Path, *, leave: int = 0) -> Path:
    """Fill the file system holding `path` until at most `leave` bytes are free; the ballast
    file, to delete when space should come back."""
    ballast = path / "ballast"
    with open(ballast, "wb") as out:
        for _ in range(100_000):  # bounded: at most 100 000 blocks of 64 KiB (6.4 GB)
            free = shutil.disk_usage(path).free
            if free <= leave:
                break
            try:
                out.write(b"\0" * min(64 * 1024, free - leave))
                out.flush()
            except OSError:
                break
    return ballast


def partial_files(root: Path) -> list[Path]:
    """Temporary names of writes that never finished, anywhere under `root`."""
    return sorted(p for p in root.rglob("*.part") if p.is_file())


def terminate_connections(admin_url: str, database: str) -> int:
    """End every server process connected to `database` (what a PostgreSQL restart does to
    its clients), from an administrative connection; how many were ended."""
    import sqlalchemy

    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            return len(
                connection.execute(
                    sqlalchemy.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": database},
                ).all()
            )
    finally:
        admin.dispose()


def allow_connections(admin_url: str, database: str, allowed: bool) -> None:
    """Refuse (or accept again) new connections to `database`: with `terminate_connections`,
    a database that is down for a while, without touching the server other tests share."""
    import sqlalchemy

    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            flag = "true" if allowed else "false"
            connection.execute(sqlalchemy.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {flag}'))
    finally:
        admin.dispose()


def asset_rows(count: int, *, run_id: str, prefix: str = "asset") -> Any:
    """`count` rows of the assets table (as unreadable files make them: no stage needed)."""
    from jobs.rows import failed_assets

    found = [
        {
            "asset_id": f"{prefix}-{i:04d}",
            "uri": f"file:///footage/{prefix}-{i}.mp4",
            "size_bytes": 10,
            "error": "x",
        }
        for i in range(count)
    ]
    return failed_assets(found, run_id=run_id, pipeline_version="faults")


def commit_assets(catalog: Any, rows: Any, *, run_id: str) -> None:
    """Commit the rows to the assets table and record the catalog version, as a run does."""
    from catalog.iceberg import replace_assets
    from catalog.versions import committing, record_version

    with committing(catalog):
        replace_assets(catalog, "assets", rows, rows["asset_id"].to_pylist(), run_id=run_id)
        record_version(catalog, run_id)


def visible_rows(catalog: Any, name: str = "assets") -> int:
    """Rows of the table that a reader sees (at the latest catalog version)."""
    from catalog.iceberg import read

    return read(catalog, name, columns=("asset_id",)).num_rows


def missing_files(catalog: Any, name: str = "assets") -> list[str]:
    """Data files that the latest version's snapshot of the table names but storage lacks."""
    from catalog.iceberg import table, visible

    seen = visible(catalog, name)
    if seen is None:
        return []
    tbl = table(catalog, name)
    io = tbl.io
    files = [task.file.file_path for task in tbl.scan(snapshot_id=seen.snapshot_id).plan_files()]
    return [f for f in files if not io.new_input(f).exists()]


# -- whole runs, the cheapest there are -------------------------------------------------------


def footage_folder(folder: Path, clips: int, clip_writer: Any) -> Path:
    """`clips` small synthetic clips (1 s, one cut each) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(clips):
        clip_writer(folder / f"reel{i:02d}.mp4", seconds=1.0, size=(160, 90), cuts=1, seed=i)
    return folder


def segment_spec(source: Path, *, name: str = "faults", retry_failed: bool = False) -> Any:
    """A job of the segment stage alone (one actor) over `source`: shots, keyframes, assets."""
    from jobs.spec import JobSpec, only_stages

    return JobSpec.model_validate(
        {
            "name": name,
            "source": {"uri": str(source)},
            "retry_failed": retry_failed,
            "stages": only_stages(segment={"resources": {"min_actors": 1, "max_actors": 1}}),
        }
    )
