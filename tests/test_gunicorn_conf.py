"""The deployment's gunicorn settings (app/gunicorn.conf.py: gthread, per-worker SO_REUSEPORT sockets, keep-alive),
served for real: pipelined requests, and keep-alive connections that outnumber the threads, all get answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """gunicorn -c app/gunicorn.conf.py with one worker of one thread (so connections must take turns)."""
    folder = tmp_path_factory.mktemp("gunicorn")
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{folder}/qala.sqlite3", "REDIS_URL": "",
           "SECRET_KEY": "test", "WEB_CONCURRENCY": "1", "QALA_WEB_THREADS": "1"}
    proc = subprocess.Popen([str(Path(sys.executable).with_name("gunicorn")), "-c", "app/gunicorn.conf.py",
                             "-b", f"127.0.0.1:{port}", "--log-level", "warning", "app:create_app()"],
                            cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(REQUEST)
                    if sock.recv(100).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _responses(sock: socket.socket, count: int) -> list[bytes]:
    """Read ``count`` HTTP responses (each with a Content-Length) from the socket."""
    buf, out = b"", []
    while len(out) < count:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection"
            buf += chunk
        head, _, buf = buf.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(buf) < length:
            buf += sock.recv(65536)
        out.append(head.split(b"\r\n")[0] + b" " + buf[:length])
        buf = buf[length:]
    return out


def test_keep_alive_connections_outnumbering_threads_each_get_every_answer(server: int) -> None:
    conns = [socket.create_connection(("127.0.0.1", server), timeout=10) for _ in range(3)]
    try:
        for _ in range(20):  # round robin over one thread: each kept-alive connection waits its turn
            for sock in conns:
                sock.sendall(REQUEST)
            for sock in conns:
                (answer,) = _responses(sock, 1)
                assert answer.startswith(b"HTTP/1.1 200") and b'"ok"' in answer
    finally:
        for sock in conns:
            sock.close()


def test_pipelined_requests_on_one_connection_are_all_answered_in_order(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(REQUEST + b"GET /nope-not-here HTTP/1.1\r\nHost: test\r\n\r\n" + REQUEST)
        first, missing, last = _responses(sock, 3)
    assert first.startswith(b"HTTP/1.1 200") and last.startswith(b"HTTP/1.1 200")
    assert missing.startswith(b"HTTP/1.1 404")
