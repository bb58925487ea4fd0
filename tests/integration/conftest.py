"""Fixtures of the stream tests that run against a module's own `stack` (tests/integration/streams_stack.py)."""

import pytest


@pytest.fixture
def held_stream(stack, django_db_blocker):
    """(meeting, stream_id) of a new meeting whose stream a worker of the module's stack holds; after the test the
    simulator's faults are cleared and the meeting ended."""
    meeting, row = stack.hold_stream(django_db_blocker, "Held stream")
    yield meeting, row.rtms_stream_id
    stack.sim.delete("/_sim/faults")
    stack.sim.post(f"/_sim/meetings/{meeting['id']}/end")
