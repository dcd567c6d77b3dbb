"""gunicorn settings for serving Qala: ``gunicorn -c app/gunicorn.conf.py 'app:create_app()'``.

``bench/display.py`` and the ticketing benchmarks (``bench/taps.py``, ``backlog.py``, ``faults.py``) serve Qala
and their bare baselines with this file, so what they measure is the app as deployed. ``WEB_CONCURRENCY`` and
``QALA_WEB_THREADS`` override the process and thread counts.
"""

import os

# Threads, not sync workers: keep-alive sockets of polling displays wait in the worker's poller without holding
# a thread, and an SSE stream (/arrivals/stream) holds one thread for as long as it is open.
worker_class = "gthread"
# One process per core, 16 threads each: requests mostly wait on Redis or PostgreSQL, SSE streams hold one (at
# most QALA_SSE_STREAMS, 8, per process), and concurrent online taps share one commit (app/ticketing/coalesce.py).
# Fewer threads contend less for the GIL: with per-worker sockets (below), bench/display.py's 32 polling
# connections got p99 16.3 ms with 16 threads against 17.8–20.4 ms with 32 (and 14.5 ms with 4, too few for SSE
# streams and for group commit, which needs taps in flight together).
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 2)
threads = int(os.environ.get("QALA_WEB_THREADS") or 16)
# Displays poll every few seconds over one connection; keep it open between polls (longer than the usual 60 s
# idle timeout of a load balancer in front, so the balancer, not gunicorn, closes idle connections).
keepalive = 75
# Each worker listens on its own SO_REUSEPORT socket (gunicorn 27 binds per worker when this is set), so the
# kernel spreads connections evenly over the workers. On one shared socket, whichever worker woke first took the
# connections, and kept-alive connections stay where they landed: bench/display.py's 32 pollers split unevenly
# (round ratios 0.55–3.08 in one run) and the busier worker's p99 was the run's. With this: 1.18–1.29, p99 lower.
reuse_port = True

# Slow clients. A gthread thread reads a request's headers and body itself, in blocking mode and without a
# deadline: a client that trickles its bytes (slowloris) holds one thread for as long as it likes, and 40 of
# them starved /healthz. So a reverse proxy that buffers whole requests before passing them on (nginx, with its
# client_header_timeout and client_body_timeout) must front gunicorn in production — see the README's
# deployment notes. These limits bound what one request can make a thread read:
limit_request_line = 4094  # bytes of method, URL and query string (gunicorn's default, stated)
limit_request_fields = 50  # headers per request: a device sends 8, a browser about 20
limit_request_field_size = 8190  # bytes per header
# A worker whose main loop is silent this long is killed and replaced (a stuck request, not an SSE stream: those
# run in threads, and end after REALTIME_SSE_MAX_S, 300 s).
timeout = 60
graceful_timeout = 30


def post_fork(server: object, worker: object) -> None:
    """A thread waiting for the GIL gets it after 1 ms instead of Python's default 5 ms: with many threads a
    request that is ready to answer otherwise waits behind another thread's time slice."""
    import sys

    sys.setswitchinterval(0.001)
