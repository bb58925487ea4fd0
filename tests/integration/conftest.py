"""Fixtures shared by integration tests: the stream tests' `held_stream`, on a module's own `stack`
(tests/integration/streams_stack.py), and the console tests' `console_app`."""

import pytest

from tests.consent_support import make_app, register_with_sim


@pytest.fixture
def console_app(daphne, zoomsim):
    """Notetaker, registered with the simulator, whose OAuth signs admins in to the console."""
    app = make_app("Notetaker")
    register_with_sim(zoomsim, daphne.url, app)
    return app


@pytest.fixture
def held_stream(stack, django_db_blocker):
    """(meeting, stream_id) of a new meeting whose stream a worker of the module's stack holds; after the test the
    simulator's faults are cleared and the meeting ended."""
    meeting, row = stack.hold_stream(django_db_blocker, "Held stream")
    yield meeting, row.rtms_stream_id
    stack.sim.delete("/_sim/faults")
    stack.sim.post(f"/_sim/meetings/{meeting['id']}/end")
