"""How a process that holds many streams runs: paced polling of its sockets, and a quieter garbage collector.

Paced polling: the event loop reads its sockets at most once per tick while nothing needs it sooner.

At a thousand streams a frame arrives every 20 µs; served one by one, each costs a wake-up and a read system
call (40% of the receive path's CPU, measured with py-spy). When the loop instead waits out the rest of a tick
after each pass, a tick's frames queue in each socket's kernel buffer and are read together:
bench/rtms_receive.py measured 0.048 → 0.030 CPU-s per stream-minute at 1,000 streams with a 0.1 s tick.
The tick is 0.08 s: the send→store lag is up to a tick plus one pass over every socket and file, and 0.1 s
left too little of the 250 ms p99 goal at 1,000 streams (bench/streams_hold.py). Since waiting costs latency,
the owner says when it is allowed (not while a handshake is under way) and `wake()` cuts a wait short (work
handed over from another thread). Other threads have the interpreter to themselves while the loop waits.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable

TICK = 0.08  # seconds; the session host also hands what its streams received to the file thread once per tick


class Pacer:
    """Calls `on_tick()` on `loop` once per `period` seconds; after it, blocks the loop for what is left of the
    period when `may_wait()` says so, else lets the loop run freely until the next tick."""

    def __init__(self, loop: asyncio.AbstractEventLoop, period: float, on_tick: Callable[[], None],
                 may_wait: Callable[[], bool]) -> None:
        self.period = period
        self._loop = loop
        self._on_tick = on_tick
        self._may_wait = may_wait
        self._woken = threading.Event()
        self._last_tick = 0.0

    def start(self) -> None:
        self._loop.call_soon(self._tick)

    def wake(self) -> None:
        """From any thread: end the current wait now (callbacks scheduled before this call run next)."""
        self._woken.set()

    def _tick(self) -> None:
        self._on_tick()
        if self._may_wait():
            rest = self._last_tick + self.period - time.monotonic()
            if rest > 0:
                self._woken.wait(rest)
                self._woken.clear()
            self._last_tick = time.monotonic()
            self._loop.call_soon(self._tick)  # after the poll the loop makes next
        else:
            self._last_tick = time.monotonic()
            self._loop.call_later(self.period, self._tick)


def quiet_garbage_collector() -> None:
    """What is loaded by now (Django, the app) is never garbage: keep collections from walking it. And collect
    the youngest generation every 50,000 net allocations instead of 700: the frame path makes short-lived
    containers that reference counting frees anyway. Measured at 1,000 streams (bench/streams_hold.py): the
    defaults made ~70 collections a second, 14% of the CPU, with pauses up to 250 ms; these made none in 20 s."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
