"""Zoom's reconnection backoff (docs/STREAMS.md): after a lost socket the client tries at once, then waits the base
delay doubling up to the cap (3 s → 30 s at Zoom's figures; scaled down here), and a good handshake resets it.
The attempts are read from the simulator's own connection records (each refused handshake is one)."""

from dataclasses import replace

from tests.integration.test_rtms_client import TIMINGS, held_streams, hold, world  # noqa: F401 - fixtures
from tests.processes import wait_for

BASE = 0.2
CAP = 0.8


def signaling_attempts_after(sim_world, stream_id, after_ms):
    """(opened_at, closed_at) of each signaling connection opened after `after_ms`, in order."""
    return sorted((c["opened_at"], c["closed_at"]) for c in sim_world.stream(stream_id)["connections"]
                  if c["kind"] == "signaling" and c["opened_at"] > after_ms)


def waits_between(attempts):
    """Seconds from each refused attempt's end (the simulator closing it) to the next attempt: the client's wait,
    without the refused handshake's own round trip (slower on a loaded machine)."""
    return [round((opened - closed) / 1000, 2) for (_, closed), (opened, _) in zip(attempts, attempts[1:])]


def refuse_then_drop(sim_world, stream_id, refusals):
    sim_world.sim.post("/_sim/faults", json={"kind": "refuse_handshake", "stage": "signaling",
                                             "status_code": 45, "count": refusals})
    dropped_at = sim_world.stream(stream_id)["connections"][-1]["opened_at"]
    sim_world.sim.post("/_sim/faults", json={"kind": "drop_socket", "stream_id": stream_id, "socket": "signaling"})
    return dropped_at


def test_backoff_doubles_to_the_cap_and_resets_after_a_good_handshake(world, held_streams):  # noqa: F811
    timings = replace(TIMINGS, backoff_base=BASE, backoff_cap=CAP)
    payload = world.start_stream(world.meeting())
    stream_id = payload["rtms_stream_id"]
    held = hold(world, held_streams, payload, timings=timings)
    held.wait_ready()

    dropped_at = refuse_then_drop(world, stream_id, refusals=4)
    wait_for(lambda: len(signaling_attempts_after(world, stream_id, dropped_at)) >= 5, 15, "five attempts")
    held.wait_ready()
    waits = waits_between(signaling_attempts_after(world, stream_id, dropped_at))
    expected = [BASE, 2 * BASE, CAP, CAP]  # 0.2, 0.4, 0.8 (= 4 × 0.2 = the cap), then the cap
    for waited, wanted in zip(waits, expected):
        assert wanted - 0.02 <= waited <= wanted * 1.1 + 0.1, (waits, expected)  # Zoom's jitter: up to +10 %

    # Held again: the next loss starts over, at once and then after the base delay.
    held_again_at = signaling_attempts_after(world, stream_id, dropped_at)[-1][0]
    refuse_then_drop(world, stream_id, refusals=1)
    wait_for(lambda: len(signaling_attempts_after(world, stream_id, held_again_at)) >= 2, 15, "two attempts")
    held.wait_ready()
    [waited] = waits_between(signaling_attempts_after(world, stream_id, held_again_at)[:2])
    assert BASE - 0.02 <= waited <= BASE * 1.1 + 0.1
    held.close()
