"""How a process that holds many streams runs: polling paced to its load, and a quieter garbage collector.

Paced polling: once per tick the owner's `on_tick` runs (the session host hands what its streams received to
its file thread) and, when the owner allows it, the loop then blocks for the rest of the tick, so the frames of
that tick queue in each socket's kernel buffer and the next pass reads them together.

At a thousand streams a frame arrives every 20 µs; served one by one, each costs a wake-up and a read system
call (40% of the receive path's CPU, measured with py-spy). With a 0.1 s tick bench/rtms_receive.py measured
0.048 → 0.030 CPU-s per stream-minute at 1,000 streams. But a tick is also latency: the send→store lag is up to
a tick plus one pass over every socket and file. So the tick follows the load. Every half second the pacer
measures the share of one core the process used (every thread: the loop, the file and database threads share
one interpreter) and the share of wall time the loop was late for its ticks or running them (a core shared with
other processes shows there, not in the CPU time), and picks the tick from the larger: SHORTEST_TICK (one audio
frame) below LIGHT_LOAD, where the loop also reads its sockets as data arrives; TICK (0.08 s) from BUSY_LOAD,
where batching saves the most; in between, proportionally. A longer tick lowers the load it measures, so the
load is smoothed and the tick moves at most a quarter of its range per measurement, which keeps it from swinging.

Since waiting costs latency, the owner says when it is allowed (not while a handshake is under way) and `wake()`
cuts a wait short (work handed over from another thread). Other threads have the interpreter to themselves while
the loop waits. So, paced, the loop also waits for the work its `on_tick` handed to another thread (the session
host's file writes) before its next pass, for one longest tick at most (a stalled disk slows the reads, never
stops them): a pass overlapping the writes made the two threads hand the interpreter's lock to each other at
every system call of the writes (at 1,500 streams, lag p50 -20 ms for the same CPU: docs/STREAMS.md). Database
work that nothing waits on is held for the rest of that wait, after the writes (`run_while_waiting`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import threading
import time
from collections.abc import Callable

TICK = 0.08  # seconds: the longest tick, when the process is busy
SHORTEST_TICK = 0.02  # one 20 ms audio frame: the files still get a write per frame at most
LIGHT_LOAD = 0.4  # share of one core below which the loop reads on readiness and ticks every SHORTEST_TICK
BUSY_LOAD = 0.6  # from here on the full TICK
SATURATED_LOAD = 0.95  # from here on each stream's media is written every other tick…
UNSATURATED_LOAD = 0.85  # …until the load is back under this (the switch itself saves ~0.1 core: no flapping)
LOAD_WINDOW = 0.5  # seconds of CPU and wall time per load measurement
SMOOTHING = 0.5  # weight of the newest measurement in the smoothed load


class Pacer:
    """Calls `on_tick()` on `loop` once per tick; after it, blocks the loop for what is left of the tick, and
    until the future `on_tick` returned (work it handed to another thread, or None) is done, when the process is
    loaded enough for batching to pay and `may_wait()` says so, else lets the loop run freely until the next
    tick. The tick lies between `shortest` and `longest`, by the measured load."""

    def __init__(self, loop: asyncio.AbstractEventLoop, longest: float,
                 on_tick: Callable[[], concurrent.futures.Future | None],
                 may_wait: Callable[[], bool], shortest: float = SHORTEST_TICK,
                 cpu_seconds: Callable[[], float] = time.process_time) -> None:
        self.longest = longest
        self.shortest = min(shortest, longest)
        self.period = self.shortest
        self.write_every = 1  # ticks between two writes of one stream's media (`write_every`, below)
        self.load = 0.0  # smoothed share of one core used by this process
        self._loop = loop
        self._on_tick = on_tick
        self._may_wait = may_wait
        self._cpu_seconds = cpu_seconds
        self._woken = threading.Event()
        self._waiting = threading.Event()  # set while the loop waits out a tick, and always while it runs freely
        self._waiting.set()
        self._last_tick = 0.0
        self._due = time.monotonic()  # when the next tick should run
        self._behind = 0.0  # seconds of this window the loop spent late for a tick or running one
        self._window = (time.monotonic(), cpu_seconds())

    def start(self) -> None:
        self._loop.call_soon(self._tick)

    def wake(self) -> None:
        """From any thread: end the current wait now (callbacks scheduled before this call run next)."""
        self._woken.set()

    def run_while_waiting(self, fn, *args):
        """From another thread, for work nothing waits on (the session host's commits of rows and writes of the
        media index): `fn(*args)` once the paced loop waits out its tick, after the tick's own writes; at once
        while the loop runs freely; after one longest tick at most. Started during a pass, such work shared the
        interpreter with it and stretched it (docs/STREAMS.md)."""
        self._waiting.wait(self.longest)
        return fn(*args)

    @property
    def batching(self) -> bool:
        """Whether the loop is worth pacing: the process is past LIGHT_LOAD."""
        return self.period > self.shortest

    def _measure(self, now: float) -> None:
        started, cpu_started = self._window
        if now - started < LOAD_WINDOW:
            return
        cpu = self._cpu_seconds()
        sample = max(cpu - cpu_started, self._behind) / (now - started)
        self._window, self._behind = (now, cpu), 0.0
        self.load += SMOOTHING * (sample - self.load)
        share = min(1.0, max(0.0, (self.load - LIGHT_LOAD) / (BUSY_LOAD - LIGHT_LOAD)))
        target = self.shortest + share * (self.longest - self.shortest)
        step = (self.longest - self.shortest) / 4
        self.period = min(max(target, self.period - step), self.period + step)
        # Near saturation each stream's media is written every other tick, half the streams on each: a write
        # costs about the same for two ticks' audio as for one (~15 µs of bookkeeping and a system call), so the
        # file thread's CPU halves (about a tenth of the process's) for one more tick of lag. Not earlier: below
        # saturation that tick of lag buys nothing (bench/streams_hold.py, docs/STREAMS.md).
        if self.load >= SATURATED_LOAD:
            self.write_every = 2
        elif self.load < UNSATURATED_LOAD:
            self.write_every = 1

    def _tick(self) -> None:
        started = time.monotonic()
        handed = self._on_tick()
        now = time.monotonic()
        # Paced, the tick is due right after the wait: what it was late by is the pass over the sockets.
        self._behind += now - min(self._due, started)
        self._measure(now)
        if self.batching and self._may_wait():
            if handed is not None:
                concurrent.futures.wait([handed], timeout=self.longest)
            rest = self._last_tick + self.period - time.monotonic()
            if rest > 0:
                self._waiting.set()
                self._woken.wait(rest)
                self._woken.clear()
                self._waiting.clear()
            self._last_tick = self._due = time.monotonic()
            self._loop.call_soon(self._tick)  # after the poll the loop makes next
        else:
            self._waiting.set()
            self._last_tick = now
            self._due = now + self.period
            self._loop.call_later(self.period, self._tick)


def quiet_garbage_collector() -> None:
    """What is loaded by now (Django, the app) is never garbage: keep collections from walking it. And collect
    the youngest generation every 50,000 net allocations instead of 700: the frame path makes short-lived
    containers that reference counting frees anyway. Measured at 1,000 streams (bench/streams_hold.py): the
    defaults made ~70 collections a second, 14% of the CPU, with pauses up to 250 ms; these made none in 20 s."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
