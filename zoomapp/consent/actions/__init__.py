"""The one place consent state changes (docs/CONSENT.md's rules), as do_* functions by noun, in zulip's style:

- presence: panels opened, hosts and participants joining and leaving, the meeting ending;
- sharing_requests: asking, auto-start, the host's approve and deny (one approval path);
- host_controls: the host's toggles, disable, and pause/resume/stop of one app;
- sharing_with_apps: sharing with apps turned off or on, and every app's row of the meeting following it;
- starting: asking Zoom to start or stop a stream, and what Zoom or the panel answered;
- streams: what Zoom and our workers report about streams, restarts after an error stop.

Each do_* checks the rule and the actor's role (read server-side), writes the rows and an audit entry in one
transaction, and after commit pushes the meeting's full state with its version. The actor is keyword-only.
"""
