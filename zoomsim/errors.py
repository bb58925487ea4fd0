"""The simulator's shared refusals: raised by the model (zoomsim/state.py) and its scripts (zoomsim/scripts.py),
answered by the REST, control and window handlers. Their own module, so the model and the scripts need not import
each other."""


class StreamRefused(Exception):
    """A start/stop/pause/resume that Zoom refuses. `code`/`http_status` as REST returns them; `outcome` is the
    participant-facing short label the window shows."""

    def __init__(self, code, message, outcome="failed", http_status=400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.outcome = outcome
        self.http_status = http_status
