"""Bodies, frames and text from outside, read the one way each: webhooks (zoomapp/webhooks), the panel's API and
socket (zoomapp/consent), the console's socket (zoomapp/console) and app contexts (zoomapp/marketplace).
docs/SECURITY.md "JSON and text from outside" says where each is refused and how.
"""

import json


class NotJSON(ValueError):
    """The body or frame is not JSON we can read; nothing was done with it."""


def parse_json(data):
    """The JSON value of `data` (str or bytes), else NotJSON: bad UTF-8, bad syntax, or nesting deeper than Python's
    parser follows (`"[" * 5000`), which raises RecursionError, not a ValueError."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise NotJSON("not valid JSON") from None


def parse_json_frame(text_data, max_chars):
    """A WebSocket frame's JSON value, else NotJSON: a binary frame (no text), one over `max_chars`, or not JSON."""
    if text_data is None or len(text_data) > max_chars:
        raise NotJSON(f"not one JSON text frame of at most {max_chars} characters")
    return parse_json(text_data)


def is_storable_text(value):
    """A string PostgreSQL text can hold: no NUL character and no lone surrogate (JSON's "\\u0000" and "\\ud800"
    decode to both); storing either fails the whole write."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
