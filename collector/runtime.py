"""Running long-lived parts in one event loop: signals, the embedded API server."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Generator, Iterator
from typing import Any

import uvicorn


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to Tally's own loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Do not install handlers: Tally's stop event decides when to exit."""
        yield


class ApiServer:
    """The HTTP API served inside the current event loop until `stop()`."""

    def __init__(self, app: Any, host: str, port: int, log_level: str = "warning") -> None:
        self.host = host
        self.port = port
        self._server = _QuietServer(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_level=log_level.lower(),
                log_config=None,
                access_log=False,
                proxy_headers=False,
                lifespan="on",
            )
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """Return the base URL of the API."""
        return f"http://{self.host}:{self.port}"

    async def start(self, within: float = 15.0) -> None:
        """Start serving; raise RuntimeError if the server did not come up in time."""
        self._task = asyncio.create_task(self._server.serve(), name="tally-api")
        deadline = asyncio.get_running_loop().time() + within
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"the API did not start on {self.host}:{self.port}")
            if asyncio.get_running_loop().time() > deadline:
                await self.stop()
                raise RuntimeError(f"the API did not start within {within:g} s")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop serving and wait for the server task."""
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=15)
            self._task = None


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set `stop` on SIGINT or SIGTERM while inside the block."""
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    try:
        yield
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
