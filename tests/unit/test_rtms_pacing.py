"""The pacer's tick follows the process's load (rtms/client/pacing.py): one audio frame and sockets read as data
arrives while the process is lightly loaded, the full tick with the loop blocked between passes when it is busy.
Driven by a fake clock and a fake loop that records how the next tick was scheduled."""

import concurrent.futures
import threading

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


class PacedProcess:
    """A pacer ticked in fake time by a process whose CPU use is set for each stretch of time."""

    def __init__(self, clock):
        self.clock, self.loop, self.cpu = clock, RecordingLoop(), 0.0
        self.handed = None  # what each tick hands to another thread (a concurrent future), as the host's writes
        self.pacer = pacing.Pacer(self.loop, pacing.TICK, lambda: self.handed, lambda: True,
                                  cpu_seconds=lambda: self.cpu)
        self.pacer._woken = FakeWait(clock)

    def run(self, core_share, seconds, late=0.0):
        """Tick for `seconds` while using `core_share` of a core; each tick runs `late` seconds after it was due
        (a pass over the sockets after a wait, or a free-running loop's timer)."""
        clock = self.clock
        end = clock.now + seconds
        while clock.now < end:
            before = clock.now
            self.pacer._tick()
            how, delay = self.loop.scheduled[-1]
            clock.now += late if how == "soon" else delay + late
            self.cpu += core_share * (clock.now - before)
        return self.pacer


def run_ticks(clock, core_share, seconds, late=0.0):
    process = PacedProcess(clock)
    return process.run(core_share, seconds, late), process.loop


def test_an_idle_process_ticks_every_audio_frame_and_reads_sockets_as_data_arrives(clock):
    pacer, loop = run_ticks(clock, core_share=0.05, seconds=5)

    assert pacer.period == pacing.SHORTEST_TICK == 0.02
    assert loop.scheduled[-1] == ("later", 0.02)  # the loop is never blocked: sockets are read on readiness
    assert pacer.write_every == 1  # every stream's audio goes to its file every tick


def test_a_busy_process_ticks_every_80_ms_and_polls_once_per_tick(clock):
    pacer, loop = run_ticks(clock, core_share=0.9, seconds=5)

    assert pacer.period == pacing.TICK == 0.08
    assert loop.scheduled[-1] == ("soon", None)  # waited out the tick, then one poll of every socket
    assert pacer.write_every == 1  # not saturated: each stream's audio still goes to its file every tick


def test_a_saturated_process_writes_each_streams_media_every_other_tick(clock):
    pacer, _ = run_ticks(clock, core_share=1.0, seconds=5)

    assert pacer.period == pacing.TICK
    assert pacer.write_every == 2


def test_a_core_shared_with_other_processes_counts_as_load_even_if_little_of_it_is_ours(clock):
    # Each tick runs 60 ms late (the process waits for the core) while it uses 10% of a core.
    pacer, _ = run_ticks(clock, core_share=0.1, seconds=5, late=0.06)

    assert pacer.period == pacing.TICK


def test_in_between_the_tick_grows_with_the_load(clock):
    pacer, _ = run_ticks(clock, core_share=(pacing.LIGHT_LOAD + pacing.BUSY_LOAD) / 2, seconds=5)

    assert pacing.SHORTEST_TICK < pacer.period < pacing.TICK
    assert pacer.write_every == 1


def test_media_is_written_every_tick_again_once_the_load_falls(clock):
    process = PacedProcess(clock)
    assert process.run(core_share=1.0, seconds=5).write_every == 2
    # What the switch saved does not switch it back…
    assert process.run(core_share=pacing.SATURATED_LOAD - 0.05, seconds=5).write_every == 2

    pacer = process.run(core_share=pacing.UNSATURATED_LOAD - 0.1, seconds=5)  # …a lighter load does

    assert pacer.period == pacing.TICK
    assert pacer.write_every == 1


def test_a_busy_loop_waits_for_the_work_its_tick_handed_over_before_its_next_pass(clock):
    process = PacedProcess(clock)
    process.run(core_share=0.9, seconds=5)
    write = concurrent.futures.Future()
    threading.Timer(0.05, write.set_result, [None]).start()  # the file thread, finishing its writes
    process.handed = write

    process.pacer._tick()

    assert write.done()  # the pass that follows never overlaps the writes
    assert process.loop.scheduled[-1] == ("soon", None)


def test_a_write_that_never_ends_holds_the_busy_loop_for_one_tick_at_most(clock):
    process = PacedProcess(clock)
    process.run(core_share=0.9, seconds=5)
    process.handed = concurrent.futures.Future()  # a stalled disk

    process.pacer._tick()  # returns: the sockets are still read

    assert not process.handed.done()
    assert process.loop.scheduled[-1] == ("soon", None)


def test_a_lightly_loaded_loop_does_not_wait_for_the_work_it_handed_over(clock):
    process = PacedProcess(clock)
    process.run(core_share=0.05, seconds=5)
    process.handed = concurrent.futures.Future()

    process.pacer._tick()

    assert not process.handed.done()
    assert process.loop.scheduled[-1] == ("later", pacing.SHORTEST_TICK)


def test_work_nothing_waits_on_starts_while_the_busy_loop_waits_after_the_ticks_writes(clock):
    """The host's commits of rows and index writes: held while the loop makes its pass, run in its wait once the
    tick's file writes are done, so they stretch neither."""
    process = PacedProcess(clock)
    process.run(core_share=0.9, seconds=5)
    process.pacer._waiting.clear()  # the loop is in a pass
    process.pacer.longest = 5.0  # the bound on the hold, in real time: far beyond this test's
    write = concurrent.futures.Future()
    process.handed = write
    started = threading.Event()
    seen = []
    database = concurrent.futures.ThreadPoolExecutor(1)
    commit = database.submit(process.pacer.run_while_waiting, lambda: (started.set(), seen.append(write.done())))

    assert not started.wait(0.2)  # held while the pass lasts
    threading.Timer(0.05, write.set_result, [None]).start()  # the file thread, finishing the tick's writes
    process.pacer._tick()
    commit.result(5)
    database.shutdown()

    assert seen == [True]  # after the writes, not alongside them


def test_work_nothing_waits_on_runs_at_once_while_the_loop_runs_freely(clock):
    process = PacedProcess(clock)
    process.run(core_share=0.05, seconds=5)

    assert process.pacer.run_while_waiting(lambda: "committed") == "committed"
    assert process.pacer._waiting.is_set()
