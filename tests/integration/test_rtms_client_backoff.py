"""Zoom's reconnection backoff (docs/STREAMS.md): after a lost socket the client tries at once, then waits the base
delay doubling up to the cap (3 s → 30 s at Zoom's figures; scaled down here), and a good handshake resets it.
The attempts are read from the simulator's own connection records (each refused handshake is one)."""

from dataclasses import replace

from tests.integration.test_rtms_client import TIMINGS, held_streams, hold, world  # noqa: F401 - fixtures
from tests.processes import wait_for

BASE = 0.2
CAP = 0.8


def signaling_attempts_after(sim_world, stream_id, after_ms):
    return sorted(c["opened_at"] for c in sim_world.stream(stream_id)["connections"]
                  if c["kind"] == "signaling" and c["opened_at"] > after_ms)


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
    attempts = signaling_attempts_after(world, stream_id, dropped_at)
    waits = [round((b - a) / 1000, 2) for a, b in zip(attempts, attempts[1:])]
    expected = [BASE, 2 * BASE, CAP, CAP]  # 0.2, 0.4, 0.8 (= 4 × 0.2 = the cap), then the cap
    for waited, wanted in zip(waits, expected):
        assert wanted <= waited <= wanted * 1.1 + 0.1, (waits, expected)

    # Held again: the next loss starts over, at once and then after the base delay.
    held_again_at = attempts[-1]
    refuse_then_drop(world, stream_id, refusals=1)
    wait_for(lambda: len(signaling_attempts_after(world, stream_id, held_again_at)) >= 2, 15, "two attempts")
    held.wait_ready()
    first, second = signaling_attempts_after(world, stream_id, held_again_at)[:2]
    assert BASE <= (second - first) / 1000 <= BASE * 1.1 + 0.1
    held.close()
