"""`tally serve --workers N`: N API processes forked after binding one listening socket.

The API holds no state of its own between requests (the store does), so N processes
serve it as one: the kernel hands each new connection to one of them. Each worker opens
its own connection pool and caches; each answers /metrics with its own counters only.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from types import FrameType

import uvicorn


def _serve_in_child(config: uvicorn.Config, sock: socket.socket) -> int:
    """Run one worker until it is told to stop; return its exit status."""
    try:
        server = uvicorn.Server(config)
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it shut down for
        return 130
    except BaseException as exc:  # a worker reports and exits; it never returns to the parent
        print(f"tally serve: worker {os.getpid()} failed: {exc!r}", file=sys.stderr)
        return 1
    return 0 if server.started else 1


def serve_forked(config: uvicorn.Config, workers: int) -> int:
    """Serve `config` from `workers` forked processes; return when they have all exited.

    SIGINT or SIGTERM to this process asks every worker to shut down gracefully, and
    the exit status is then that of a single server stopped the same way (130 after
    SIGINT). A worker that exits on its own stops the others, and the status is 1, so
    that whatever supervises the service sees it and restarts it whole.
    """
    sock = config.bind_socket()
    children: set[int] = set()
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)
        for pid in children:
            # SIGTERM, never a second SIGINT: uvicorn takes a repeated SIGINT as "force".
            os.kill(pid, signal.SIGTERM)

    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os._exit(_serve_in_child(config, sock))
        children.add(pid)
    sock.close()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    failed = False
    try:
        while children:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            children.discard(pid)
            if not stopping:
                code = os.waitstatus_to_exitcode(status)
                print(
                    f"tally serve: worker {pid} exited with {code}; stopping the others",
                    file=sys.stderr,
                )
                failed = True
                stop(signal.SIGTERM, None)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if failed:
        return 1
    if stopping and stopping[0] == signal.SIGINT:
        raise KeyboardInterrupt
    return 0
