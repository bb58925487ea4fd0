"""What rtms tells the rest of the product (rtms never imports zoomapp; zoomapp connects to these).

All are sent after the database transaction that made the change has committed, from whatever thread made it
(a web request, a Celery task, or the session host's database thread): receivers must be quick and must not
raise (exceptions are logged and swallowed by `send_robust`).

- `stream_state_changed(sender=StreamSession, stream=StreamSession, previous=str, reason=str)`:
  every state change (starting, active, paused, interrupted, stopped); `stream.stop_reason` holds
  Zoom's RTMS_STOP_REASON number when stopped, `stream.version` the version of `stream.snapshot()`.
- `transcript_received(sender=StreamSession, lines={(client_id, rtms_stream_id): [TranscriptSegment, ...]})`:
  the new transcript lines of every stream in one stored batch, by the app holding the stream and its id (one
  send per batch, not per stream: the session host commits a thousand streams' lines at once, so a receiver
  should make one query for all).
- `stream_content_erased(sender=StreamSession, stream=StreamSession, why=str, counts={kind: rows})`: a stream's
  stored content was deleted (why: stream_revoked, retention, or the caller's reason), so it can be audited.
"""

import django.dispatch

stream_state_changed = django.dispatch.Signal()
transcript_received = django.dispatch.Signal()
stream_content_erased = django.dispatch.Signal()
