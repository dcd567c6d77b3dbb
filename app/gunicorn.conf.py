"""gunicorn settings for serving Qala: ``gunicorn -c app/gunicorn.conf.py 'app:create_app()'``.

``bench/display.py`` serves both Qala and its bare baseline with this file, so what it measures is the app as
deployed. ``WEB_CONCURRENCY`` and ``QALA_WEB_THREADS`` override the process and thread counts.
"""

import os

# Threads, not sync workers: keep-alive sockets of polling displays wait in the worker's poller without holding
# a thread, and an SSE stream (/arrivals/stream) holds one thread for as long as it is open.
worker_class = "gthread"
# One process per core, 32 threads each: requests mostly wait on Redis or PostgreSQL and SSE streams hold one.
# On this 2-core machine (loaded by other work), bench/display.py's 32 polling connections got a lower p99 with
# 32 threads than with 8 for the bare baseline and Qala alike; Qala alone also did better than with 16 threads,
# or with 3 or 4 processes.
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 2)
threads = int(os.environ.get("QALA_WEB_THREADS") or 32)
# Displays poll every few seconds over one connection; keep it open between polls (longer than the usual 60 s
# idle timeout of a load balancer in front, so the balancer, not gunicorn, closes idle connections).
keepalive = 75


def post_fork(server: object, worker: object) -> None:
    """A thread waiting for the GIL gets it after 1 ms instead of Python's default 5 ms: with many threads a
    request that is ready to answer otherwise waits behind another thread's time slice."""
    import sys

    sys.setswitchinterval(0.001)
