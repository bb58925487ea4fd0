"""One log line per event, as logfmt: `ts=… level=… logger=… msg="…" meeting=… stream=… key=value…`.

Extra fields come from `logger.info("…", extra={...})` and from the meeting/stream bound in
rtms.log_context, so lines about a stream can be grepped by its id.
"""

import logging
import time

from rtms.log_context import meeting_var, stream_var

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# Extras that libraries attach and that would carry what must not be logged: Django's `request` (its str() is the
# URL with its query string, an OAuth callback's unspent code included) is logged as its method and path; Celery's
# `data` (a failed task's arguments: people's names) is left out.
_LEFT_OUT = {"data"}

# Control characters are escaped, so a value from outside (a panel's action, a name) cannot start a line of its own
# or hide the rest of one.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(32), 127)}
_ESCAPES.update({ord("\n"): "\\n", ord("\\"): "\\\\", ord('"'): '\\"'})


def _quote(value):
    text = str(value)
    if text == "" or " " in text or "=" in text or '"' in text or not text.isprintable():
        return '"' + text.translate(_ESCAPES) + '"'
    return text


def _loggable(key, value):
    if key == "request" and hasattr(value, "path") and hasattr(value, "method"):
        return f"{value.method} {value.path}"
    return value


class LogfmtFormatter(logging.Formatter):
    def format(self, record):
        fields = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        meeting, stream = meeting_var.get(), stream_var.get()
        if meeting:
            fields["meeting"] = meeting
        if stream:
            fields["stream"] = stream
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _LEFT_OUT and not key.startswith("_"):
                fields[key] = _loggable(key, value)
        line = " ".join(f"{k}={_quote(v)}" for k, v in fields.items() if v is not None)
        if record.exc_info:
            line += " exc=" + _quote(self.formatException(record.exc_info))
        return line
