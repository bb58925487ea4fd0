"""Media files on disk: where a stream's media lives, WAV files that are valid after every write and frame
directories with an index (a stream's content as a whole, exported or erased: rtms/stream_content.py).

Layout under a worker's spool and in storage (rtms/storage.py), one segment per file:
`rtms/<stream id>/audio/mixed-<first timestamp>-g<lease generation>.wav`, `audio/user-<id>-<ts>-g<n>.wav` (per
participant), `video-<ts>-g<n>/<timestamp>-<user>.jpg` + `index.jsonl`, the same for `deskshare-`. Every path
starts from `stream_dir`, the one place a stream id becomes a path (docs/SECURITY.md "Identifiers checked at the
edge"); names below it are built from integers only.
"""

import json
import logging
import os
import struct
from pathlib import Path

from django.conf import settings

from rtms.identifiers import InvalidIdentifier, validate

log = logging.getLogger("rtms.media")

WAV_HEADER_BYTES = 44
_IOV_MAX = os.sysconf("SC_IOV_MAX")  # os.writev exists only where sysconf does (POSIX)
# A frame is late, and the time since the audio so far ended is a gap Zoom sent nothing for (silence, a mute), when
# it starts more than half a 20 ms frame after that end: less is Zoom's timestamps wobbling (docs/STREAMS.md, "Audio
# keeps Zoom's timeline").
JITTER_MS = 10
_ZEROS = bytes(64 * 1024)  # a gap's silence is written from this one buffer, referenced as often as it takes


class OutsideMediaRoot(ValueError):
    """A stream directory that would not be a direct child of MEDIA_ROOT/rtms (a bad id, or a symlink planted
    there): nothing is read, written or deleted through it."""


def _media_root():
    return Path(settings.MEDIA_ROOT).resolve()


def stream_dir(stream_id, root=None):
    """<root>/rtms/<stream id> (root: MEDIA_ROOT, or a worker's spool), from a valid stream id and checked to
    resolve to a direct child of <root>/rtms (symlinks followed), else OutsideMediaRoot."""
    try:
        validate("rtms_stream_id", stream_id)
    except InvalidIdentifier as exc:
        raise OutsideMediaRoot(str(exc)) from None
    parent = (Path(root).resolve() if root is not None else _media_root()) / "rtms"
    path = (parent / stream_id).resolve()
    if path.parent != parent or path.name != stream_id:
        raise OutsideMediaRoot(f"the media directory of stream {stream_id!r} resolves outside {parent}")
    return path


def _wav_header(data_bytes, sample_rate, channels):
    byte_rate = sample_rate * channels * 2
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1, channels, sample_rate, byte_rate,
        channels * 2, 16, b"data", data_bytes,
    )


class WavFile:
    """16-bit PCM WAV opened for appending (a takeover continues the previous holder's file). The header's
    sizes are rewritten by `sync_header`, so the file is a valid WAV up to the last header sync, and the data
    written since is still on disk if the process dies."""

    __slots__ = ("path", "sample_rate", "channels", "_file", "_fd", "data_bytes", "created", "first_timestamp",
                 "last_timestamp", "frames", "_byte_rate", "_sample_bytes", "_jitter_bytes")

    def __init__(self, path, sample_rate=16000, channels=1):
        self.path = Path(path)
        self.sample_rate, self.channels = sample_rate, channels
        self._sample_bytes = 2 * channels
        self._byte_rate = sample_rate * self._sample_bytes
        self._jitter_bytes = self._byte_rate * JITTER_MS // 1000
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existed = self.path.exists() and self.path.stat().st_size >= WAV_HEADER_BYTES
        # Unbuffered: appends go straight to the OS in one writev, and a worker holding a thousand files does
        # not keep an 8 KiB buffer for each.
        self._file = open(self.path, "r+b" if existed else "w+b", buffering=0)  # noqa: SIM115 - closed in close()
        if not existed:
            self._file.write(_wav_header(0, sample_rate, channels))
        self._file.seek(0, os.SEEK_END)
        self.data_bytes = self._file.tell() - WAV_HEADER_BYTES
        if self.data_bytes % self._sample_bytes:  # a torn last sample from a crash: drop it
            self.data_bytes -= self.data_bytes % self._sample_bytes
            self._file.truncate(WAV_HEADER_BYTES + self.data_bytes)
            self._file.seek(0, os.SEEK_END)
        self.created = not existed
        self._fd = self._file.fileno()
        self.first_timestamp = self.last_timestamp = None  # Zoom's timestamps of the first and last frame appended
        self.frames = 0  # frames Zoom sent appended (the silence of gaps is not one)

    def append(self, chunks, first_timestamp, last_timestamp):
        """Append the PCM chunks (bytes-like) of the frames sent from `first_timestamp` to `last_timestamp`, one
        system call per IOV_MAX of them: on the OS's side at once, so the data survives the process being killed.
        The file thread makes a call per stream per tick: kept to the bare calls (docs/STREAMS.md, "How often the
        holder reads and stores")."""
        if self.first_timestamp is None:
            self.first_timestamp = first_timestamp
        self.last_timestamp = last_timestamp
        self.frames += len(chunks)
        self._write(chunks)

    def silence_before(self, timestamp):
        """Bytes of silence that put a frame sent at `timestamp` at its place on Zoom's timeline, counted from the
        first frame: 0 when it starts where the audio so far ends, within JITTER_MS, or earlier."""
        late = (timestamp - self.first_timestamp) * self._byte_rate // 1000 - self.data_bytes
        return late - late % self._sample_bytes if late > self._jitter_bytes else 0

    def append_silence(self, silence_bytes):
        """Zeros for a gap in what Zoom sent (`silence_before`), written from one shared buffer."""
        whole, rest = divmod(silence_bytes, len(_ZEROS))
        self._write([_ZEROS] * whole + [memoryview(_ZEROS)[:rest]])

    def _write(self, chunks):
        if len(chunks) > _IOV_MAX:
            for start in range(0, len(chunks), _IOV_MAX):
                self._write(chunks[start:start + _IOV_MAX])
            return
        written = os.writev(self._fd, chunks)
        total = sum(map(len, chunks))
        if written < total:  # a short write (disk nearly full, a signal): write the rest plainly
            rest = b"".join(chunks)[written:]
            while rest:
                rest = rest[self._file.write(rest):]
        self.data_bytes += total

    def sync_header(self):
        os.pwrite(self._fd, _wav_header(self.data_bytes, self.sample_rate, self.channels), 0)

    def close(self):
        if not self._file.closed:
            self.sync_header()
            self._file.close()


class FrameDir:
    """Video or screen-share frames: one file per frame plus `index.jsonl` (timestamp, user, file, bytes)."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        index = self.path / "index.jsonl"
        self.created = not index.exists()
        self.frames = 0
        self.bytes = 0
        if not self.created:
            for line in index.read_text().splitlines():
                if line.strip():
                    self.frames += 1
                    self.bytes += json.loads(line).get("bytes", 0)
        self._index = open(index, "a")  # noqa: SIM115 - closed in close()
        self.first_timestamp = self.last_timestamp = None  # Zoom's timestamps of the first and last frame added

    def add(self, timestamp, user_id, data):
        if self.first_timestamp is None:
            self.first_timestamp = timestamp
        self.last_timestamp = timestamp
        extension = "png" if data[:4] == b"\x89PNG" else "jpg" if data[:2] == b"\xff\xd8" else "bin"
        name = f"{timestamp}-{user_id}.{extension}"
        (self.path / name).write_bytes(data)
        entry = {"timestamp": timestamp, "user_id": user_id, "file": name, "bytes": len(data)}
        self._index.write(json.dumps(entry) + "\n")
        self.frames += 1
        self.bytes += len(data)

    def sync(self):
        self._index.flush()

    def close(self):
        if not self._index.closed:
            self._index.close()
