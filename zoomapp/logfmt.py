"""One log line per event, as logfmt: `ts=… level=… logger=… msg="…" meeting=… stream=… key=value…`.

Extra fields come from `logger.info("…", extra={...})` and from the meeting/stream bound in
rtms.log_context, so lines about a stream can be grepped by its id.
"""

import logging
import time

from rtms.log_context import meeting_var, stream_var

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _quote(value):
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


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
            if key not in _STANDARD and not key.startswith("_"):
                fields[key] = value
        line = " ".join(f"{k}={_quote(v)}" for k, v in fields.items() if v is not None)
        if record.exc_info:
            line += " exc=" + _quote(self.formatException(record.exc_info))
        return line
