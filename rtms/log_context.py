"""Meeting and stream ids attached to every log line written while they are bound.

The session host binds them per stream task (contextvars follow asyncio tasks), so a log
line from deep inside a sink still names the meeting and stream it is about.
"""

import contextlib
import contextvars

meeting_var = contextvars.ContextVar("meeting", default=None)
stream_var = contextvars.ContextVar("stream", default=None)


@contextlib.contextmanager
def bound(meeting=None, stream=None):
    tokens = [meeting_var.set(meeting), stream_var.set(stream)]
    try:
        yield
    finally:
        stream_var.reset(tokens[1])
        meeting_var.reset(tokens[0])


def bind(meeting=None, stream=None):
    """Bind for the rest of the current task (used at the top of a stream's task)."""
    meeting_var.set(meeting)
    stream_var.set(stream)
