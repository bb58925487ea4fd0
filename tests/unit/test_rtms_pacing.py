"""The pacer's tick follows the process's load (rtms/client/pacing.py): one audio frame and sockets read as data
arrives while the process is lightly loaded, the full tick with the loop blocked between passes when it is busy.
Driven by a fake clock and a fake loop that records how the next tick was scheduled."""

import pytest

from rtms.client import pacing


class RecordingLoop:
    def __init__(self):
        self.scheduled = []  # ("soon", None) after a wait, ("later", delay) when the loop runs freely

    def call_soon(self, callback):
        self.scheduled.append(("soon", None))

    def call_later(self, delay, callback):
        self.scheduled.append(("later", delay))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(pacing.time, "monotonic", clock)
    return clock


class FakeWait:
    """The pacer's wait, in fake time."""

    def __init__(self, clock):
        self.clock = clock

    def wait(self, seconds):
        self.clock.now += seconds

    def set(self):
        pass

    def clear(self):
        pass


def run_ticks(clock, core_share, seconds, late=0.0):
    """Tick a pacer for `seconds` of fake time while the process uses `core_share` of a core; each tick runs
    `late` seconds after it was due (a pass over the sockets after a wait, or a free-running loop's timer)."""
    loop, cpu = RecordingLoop(), [0.0]
    pacer = pacing.Pacer(loop, pacing.TICK, lambda: None, lambda: True, cpu_seconds=lambda: cpu[0])
    pacer._woken = FakeWait(clock)
    end = clock.now + seconds
    while clock.now < end:
        before = clock.now
        pacer._tick()
        how, delay = loop.scheduled[-1]
        clock.now += late if how == "soon" else delay + late
        cpu[0] += core_share * (clock.now - before)
    return pacer, loop


def test_an_idle_process_ticks_every_audio_frame_and_reads_sockets_as_data_arrives(clock):
    pacer, loop = run_ticks(clock, core_share=0.05, seconds=5)

    assert pacer.period == pacing.SHORTEST_TICK == 0.02
    assert loop.scheduled[-1] == ("later", 0.02)  # the loop is never blocked: sockets are read on readiness


def test_a_busy_process_ticks_every_80_ms_and_polls_once_per_tick(clock):
    pacer, loop = run_ticks(clock, core_share=0.9, seconds=5)

    assert pacer.period == pacing.TICK == 0.08
    assert loop.scheduled[-1] == ("soon", None)  # waited out the tick, then one poll of every socket


def test_a_core_shared_with_other_processes_counts_as_load_even_if_little_of_it_is_ours(clock):
    # Each tick runs 60 ms late (the process waits for the core) while it uses 10% of a core.
    pacer, _ = run_ticks(clock, core_share=0.1, seconds=5, late=0.06)

    assert pacer.period == pacing.TICK


def test_in_between_the_tick_grows_with_the_load(clock):
    pacer, _ = run_ticks(clock, core_share=(pacing.LIGHT_LOAD + pacing.BUSY_LOAD) / 2, seconds=5)

    assert pacing.SHORTEST_TICK < pacer.period < pacing.TICK
