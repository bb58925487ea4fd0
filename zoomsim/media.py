"""Media produced by simulated meetings, and the one shared timer that sends it to every RTMS stream.

Time is cut into 20 ms ticks (faster with --clock-scale). A spoken line becomes an utterance: PCM rendered once
(espeak-ng, or speech-like tones), cut into 20 ms chunks per output format on first use, and played from a start
tick. Audio sent to a stream is read from this timeline by tick index, so a stream whose audio socket is down
simply keeps its cursor behind: that is the 60 s buffer, replayed with the original timestamps on reconnect.
"""

import array
import asyncio
import base64
import collections
import io
import json
import logging
import math
import warnings
import wave

from zoomsim.images import jpeg, png
from zoomsim.media_params import G711, JPG, RESOLUTIONS, SAMPLE_RATES_HZ

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # stdlib in 3.11/3.12: fast resampling, stereo and mu-law in C

log = logging.getLogger("zoomsim.media")

TICK_MS = 20
BUFFER_TICKS = 60_000 // TICK_MS  # Zoom buffers up to 60 s of audio
REPLAY_FRAMES_PER_TICK = 50  # a buffer drains at up to 50x real time, so one replay never stalls every stream
TONE_RATE = 16000
AVATAR_COLORS = [(52, 101, 164), (204, 102, 51), (78, 154, 6), (117, 80, 123), (196, 160, 0), (32, 134, 140)]
SHARE_COLOR = (230, 230, 235)


_SYLLABLES = {}


def _syllable(pitch_hz, vowel, variant):
    """One voiced syllable (160 ms): f0 with its octave and a formant-ish partial, under a smooth envelope."""
    key = (pitch_hz, vowel, variant)
    if key not in _SYLLABLES:
        length = int(TONE_RATE * 0.16)
        f0 = pitch_hz * (1.0 + 0.06 * (variant - 1.5))
        formant = (700, 1100, 400)[vowel]
        samples = array.array("h", (
            int(6000 * math.sin(math.pi * i / length) ** 2 * (
                math.sin(2 * math.pi * f0 * i / TONE_RATE) + 0.5 * math.sin(4 * math.pi * f0 * i / TONE_RATE)
                + 0.35 * math.sin(2 * math.pi * formant * i / TONE_RATE)))
            for i in range(length)))
        _SYLLABLES[key] = samples.tobytes()
    return _SYLLABLES[key]


def _tone_speech(text, pitch_hz):
    """Speech-like audio: one voiced syllable per ~3 letters, short gaps between syllables and words."""
    gap = b"\x00\x00" * int(TONE_RATE * 0.03)
    word_gap = b"\x00\x00" * int(TONE_RATE * 0.08)
    parts = []
    for word in text.split() or ["..."]:
        for syllable in range(max(1, len(word) // 3)):
            parts.append(_syllable(pitch_hz, (len(word) + syllable) % 3, (syllable + len(word)) % 4))
            parts.append(gap)
        parts.append(word_gap)
    return b"".join(parts), TONE_RATE


class Voices:
    """Renders text to 16-bit mono PCM, cached by (text, voice)."""

    def __init__(self, mode):
        self.mode = mode
        self._cache = collections.OrderedDict()

    async def render(self, text, voice_index):
        key = (text, voice_index)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        pcm = None
        if self.mode == "espeak":
            pcm = await self._espeak(text, voice_index)
        if pcm is None:
            pcm = _tone_speech(text, (110, 190, 140, 220, 125, 170)[voice_index % 6])
        self._cache[key] = pcm
        if len(self._cache) > 512:
            self._cache.popitem(last=False)
        return pcm

    async def _espeak(self, text, voice_index):
        voice = ("en-us+m3", "en-us+f3", "en-us+m1", "en-us+f2", "en-us+m5", "en-us+f4")[voice_index % 6]
        try:
            process = await asyncio.create_subprocess_exec(
                "espeak-ng", "--stdout", "-s", "165", "-v", voice, "--", text,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
            wav_bytes, _ = await asyncio.wait_for(process.communicate(), 20)
            with wave.open(io.BytesIO(wav_bytes)) as wav:
                frames = wav.readframes(wav.getnframes())
                if wav.getnchannels() == 2:
                    frames = audioop.tomono(frames, 2, 0.5, 0.5)
                return frames, wav.getframerate()
        except (TimeoutError, OSError, wave.Error, EOFError):
            log.warning("event=espeak_failed fallback=tones")
            return None


class AudioFormat:
    """One output format: codec (L16/G711), rate, channels; knows its 20 ms chunk size and silence."""

    _instances = {}

    def __new__(cls, codec, rate_hz, channels):
        key = (codec, rate_hz, channels)
        if key not in cls._instances:
            instance = super().__new__(cls)
            instance.key = key
            instance.codec, instance.rate_hz, instance.channels = key
            bytes_per_sample = 1 if codec == G711 else 2
            instance.chunk_bytes = rate_hz * TICK_MS // 1000 * channels * bytes_per_sample
            instance.silence = (b"\xff" if codec == G711 else b"\x00") * instance.chunk_bytes
            cls._instances[key] = instance
        return cls._instances[key]

    @classmethod
    def from_params(cls, params):
        return cls(params["codec"], SAMPLE_RATES_HZ[params["sample_rate"]], params["channel"])

    def convert(self, pcm, source_rate):
        if source_rate != self.rate_hz:
            pcm, _ = audioop.ratecv(pcm, 2, 1, source_rate, self.rate_hz, None)
        if self.codec == G711:
            return audioop.lin2ulaw(pcm, 2)
        if self.channels == 2:
            pcm = audioop.tostereo(pcm, 2, 1, 1)
        return pcm


class Utterance:
    def __init__(self, participant, text, language, pcm, source_rate, start_tick):
        self.participant = participant
        self.text = text
        self.language = language
        self.pcm = pcm
        self.source_rate = source_rate
        self.start_tick = start_tick
        self.ticks = max(1, math.ceil(len(pcm) / 2 / source_rate * 1000 / TICK_MS))
        self.end_tick = start_tick + self.ticks
        self._chunks = {}

    def chunk(self, audio_format, tick):
        chunks = self._chunks.get(audio_format.key)
        if chunks is None:
            data = audio_format.convert(self.pcm, self.source_rate)
            size = audio_format.chunk_bytes
            data += audio_format.silence[: (-len(data)) % size]
            chunks = self._chunks[audio_format.key] = [data[i:i + size] for i in range(0, len(data), size)]
        index = tick - self.start_tick
        return chunks[index] if 0 <= index < len(chunks) else audio_format.silence


class MeetingMedia:
    """The meeting's media timeline: utterances (audio + transcript), chat, and the pictures of video/share."""

    def __init__(self, sim, meeting):
        self.sim = sim
        self.meeting = meeting
        self.utterances = []
        self._busy_until = {}  # participant key -> first free tick (nobody talks over themselves)
        self._pending_starts = []
        self._pending_ends = []
        self._mixed_cache = {}
        self.live = []  # utterances sounding at the ticker's current tick

    async def speak(self, participant, text, language=9):
        index = list(self.meeting.participants).index(participant.key)
        pcm, rate = await self.sim.voices.render(text, index)
        ticker = self.sim.ticker
        start = max(ticker.tick_index() + 1, self._busy_until.get(participant.key, 0))
        utterance = Utterance(participant, text, language, pcm, rate, start)
        self._busy_until[participant.key] = utterance.end_tick
        self.utterances.append(utterance)
        self._pending_starts.append(utterance)
        self._pending_ends.append(utterance)
        ticker.active_media.add(self)
        return {"start_time": ticker.tick_ms(utterance.start_tick), "end_time": ticker.tick_ms(utterance.end_tick),
                "ticks": utterance.ticks}

    def chat(self, participant, text):
        content = {"user_id": participant.rtms_user_id, "user_name": participant.name,
                   "timestamp": self.sim.clock.now_ms(), "data": text}
        message = _dumps({"msg_type": 18, "content": content})
        for stream in self.sim.streams_for(self.meeting):
            self.sim.ticker.send_text(stream, "chat", message)

    def advance(self, tick):
        """Once per tick: speaker changes at utterance starts, transcripts at utterance ends. `live` is kept
        incrementally (no scan of the history per tick)."""
        if self._pending_starts:
            for utterance in [u for u in self._pending_starts if u.start_tick <= tick]:
                self._pending_starts.remove(utterance)
                self.live.append(utterance)
                if utterance.participant.joined:
                    self.sim.set_active_speaker(self.meeting, utterance.participant)
        if self._pending_ends:
            for utterance in [u for u in self._pending_ends if u.end_tick <= tick]:
                self._pending_ends.remove(utterance)
                if utterance in self.live:
                    self.live.remove(utterance)
                self._transcript(utterance)
        horizon = tick - BUFFER_TICKS - 50
        if self.utterances and self.utterances[0].end_tick < horizon:
            self.utterances = [u for u in self.utterances if u.end_tick >= horizon]
        if self._mixed_cache:
            self._mixed_cache.clear()
        return bool(self._pending_starts or self._pending_ends)

    def _transcript(self, utterance):
        ticker = self.sim.ticker
        participant = utterance.participant
        content = {"user_id": participant.rtms_user_id, "user_name": participant.name,
                   "start_time": ticker.tick_ms(utterance.start_tick), "end_time": ticker.tick_ms(utterance.end_tick),
                   "timestamp": ticker.tick_ms(utterance.end_tick), "language": utterance.language,
                   "data": utterance.text}
        message = _dumps({"msg_type": 17, "content": content})
        for stream in self.sim.streams_for(self.meeting):
            ticker.send_text(stream, "transcript", message)

    def speaking_at(self, first_tick, last_tick):
        return [u for u in self.utterances if u.start_tick <= last_tick and u.end_tick > first_tick]

    def mixed(self, audio_format, tick, utterances):
        live = [u for u in utterances if u.start_tick <= tick < u.end_tick]
        if not live:
            return audio_format.silence
        if len(live) == 1:
            return live[0].chunk(audio_format, tick)
        key = (audio_format.key, tick)
        chunk = self._mixed_cache.get(key)
        if chunk is None:
            if audio_format.codec == G711:
                chunk = live[0].chunk(audio_format, tick)  # mu-law cannot be summed; the first speaker wins
            else:
                chunk = live[0].chunk(audio_format, tick)
                for other in live[1:]:
                    chunk = audioop.add(chunk, other.chunk(audio_format, tick), 2)
            self._mixed_cache[key] = chunk
        return chunk


def _dumps(message):
    return json.dumps(message, separators=(",", ":")).encode()


class Pictures:
    """Encoded frames, cached: (b64 text, byte length) per (kind, colour index, resolution, codec). A new picture
    is encoded in a worker thread (pure Python; a QHD JPEG takes a while) and frames start once it is ready."""

    def __init__(self):
        self._cache = {}
        self._pending = set()

    def get(self, kind, color_index, resolution, codec):
        key = (kind, color_index, resolution, codec)
        found = self._cache.get(key)
        if found is None and key not in self._pending:
            self._pending.add(key)
            asyncio.get_running_loop().run_in_executor(None, self._encode, key)
        return found

    def _encode(self, key):
        kind, color_index, resolution, codec = key
        width, height = RESOLUTIONS[resolution]
        color = SHARE_COLOR if kind == "deskshare" else AVATAR_COLORS[color_index % len(AVATAR_COLORS)]
        data = jpeg(width, height, color) if codec == JPG else png(width, height, color)
        self._cache[key] = (base64.b64encode(data), len(data))
        self._pending.discard(key)


class MediaTicker:
    """The one timer for all streams: every tick, advance meeting timelines and send due frames."""

    def __init__(self, sim):
        self.sim = sim
        self.interval = TICK_MS / 1000 / sim.config.clock_scale
        # This far behind in real time (the simulator itself starved of CPU): skip rather than catch up.
        self.overload_ticks = max(2, int(sim.config.max_catchup / self.interval))
        self.streams = set()  # streams that got CLIENT_READY_ACK
        self.active_media = set()  # meetings with utterances in flight
        self.pictures = Pictures()
        self._task = None
        self._start = None
        self._t0_ms = None
        self.current_tick = 0
        self.ticks = 0
        self.late_ticks = 0
        self.lateness_ms = collections.deque(maxlen=5000)
        self.frames_sent = 0
        self.busy_s = 0.0
        self.overload_skips = 0
        self.skipped_frames = 0
        self._last_overload_log = -250

    # -- clock ----------------------------------------------------------------------------------------------------

    def start(self):
        loop = asyncio.get_running_loop()
        self._start = loop.time()
        self._t0_ms = self.sim.clock.now_ms()
        self._task = loop.create_task(self._run())

    def stop(self):
        if self._task:
            self._task.cancel()

    def tick_index(self):
        if self._start is None:
            return 0
        return int((asyncio.get_running_loop().time() - self._start) / self.interval)

    def tick_ms(self, tick):
        return self._t0_ms + tick * TICK_MS

    def track(self, stream):
        self.streams.add(stream)

    def forget(self, stream):
        self.streams.discard(stream)

    async def _run(self):
        loop = asyncio.get_running_loop()
        done = 0
        while True:
            target = self._start + (done + 1) * self.interval
            # Always yield, even when behind: a saturated ticker must not starve handshakes and keep-alives.
            await asyncio.sleep(max(0.0, target - loop.time()))
            began = loop.time()
            lateness = began - target
            self.lateness_ms.append(lateness * 1000)
            if lateness > self.interval:
                self.late_ticks += 1
            now_tick = int((began - self._start) / self.interval)
            try:
                for tick in range(done + 1, now_tick + 1):
                    for media in list(self.active_media):
                        if not media.advance(tick):
                            self.active_media.discard(media)
                self.current_tick = now_tick
                if now_tick - done > self.overload_ticks:
                    self._skip_overload(done, now_tick)
                for stream in list(self.streams):
                    self.pump(stream, now_tick)
            except Exception:  # the ticker must survive a bug in one stream
                log.exception("event=tick_failed tick=%d", now_tick)
            done = now_tick
            self.ticks += 1
            self.busy_s += loop.time() - began

    def _skip_overload(self, done, now_tick):
        """The simulator itself fell behind (CPU starved): streams that were up to date skip the missed frames
        instead of catching up, so an overload shows as gaps (counted) rather than as ever-growing lag. Streams
        replaying a reconnect buffer keep replaying, and a stream whose audio socket is down keeps buffering: its
        cursor may look up to date (the socket dropped since the last tick), but Zoom replays what it missed."""
        self.overload_skips += 1
        for stream in self.streams:
            audio = stream.media.get("audio") if stream.media else None
            if audio is not None and audio.ready and stream.audio_next_tick >= done:
                self.skipped_frames += now_tick - stream.audio_next_tick
                stream.audio_next_tick = now_tick
        if now_tick - self._last_overload_log >= 250:  # at most one line per 5 s
            self._last_overload_log = now_tick
            log.warning("event=ticker_overloaded behind_ms=%d streams=%d skips=%d", (now_tick - done) * TICK_MS,
                        len(self.streams), self.overload_skips)

    def stats(self):
        samples = sorted(self.lateness_ms)

        def pct(p):
            return round(samples[min(len(samples) - 1, int(p * len(samples)))], 3) if samples else None

        return {"ticks": self.ticks, "late_ticks": self.late_ticks, "tick_ms": self.interval * 1000,
                "lateness_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": round(samples[-1], 3) if samples else None},
                "frames_sent": self.frames_sent, "streams_ready": len(self.streams), "busy_s": round(self.busy_s, 3),
                "overload_skips": self.overload_skips, "skipped_frames": self.skipped_frames,
                "streams_live": sum(1 for s in self.sim.streams.values() if s.live)}

    # -- sending --------------------------------------------------------------------------------------------------

    def send_text(self, stream, media_type, message):
        """Transcript and chat: sent now when the socket is ready, else kept (≤ 60 s) until it is."""
        if stream.paused:
            return
        conn = stream.media.get(media_type)
        if conn is not None and conn.ready and not stream.text_backlog:
            conn.send_media(message)
            self._count(stream, media_type, 1)
            return
        stream.text_backlog.append((self.current_tick, media_type, message))
        if stream.text_backlog[0][0] < self.current_tick - BUFFER_TICKS:
            stream.text_backlog = [item for item in stream.text_backlog if item[0] >= self.current_tick - BUFFER_TICKS]

    def _count(self, stream, media_type, n):
        stream.frames_sent[media_type] = stream.frames_sent.get(media_type, 0) + n
        self.frames_sent += n

    def pump(self, stream, tick):
        if stream.paused:
            stream.audio_next_tick = tick + 1
            return
        media = stream.media
        if not media:
            return
        conn = media.get("audio")
        if conn is not None and conn.ready:
            self._pump_audio(stream, conn, tick)
        if stream.text_backlog:
            self._flush_text(stream)
        conn = media.get("video")
        if conn is not None and conn.ready:
            self._pump_picture(stream, conn, tick, "video")
        conn = media.get("deskshare")
        if conn is not None and conn.ready:
            self._pump_picture(stream, conn, tick, "deskshare")

    def _flush_text(self, stream):
        media = stream.media
        if not any(kind in media and media[kind].ready for kind in ("transcript", "chat")):
            return
        kept = []
        for item in stream.text_backlog:
            conn = stream.media.get(item[1])
            if conn is not None and conn.ready and not any(k[1] == item[1] for k in kept):
                conn.send_media(item[2])
                self._count(stream, item[1], 1)
            else:
                kept.append(item)
        stream.text_backlog = kept

    def _pump_audio(self, stream, conn, tick):
        params = conn.params["audio"]
        per_tick = params["send_rate"] // TICK_MS
        first = stream.audio_next_tick
        if per_tick == 1 and first == tick and params["data_opt"] == 1:
            self._send_live_mixed(stream, conn, tick)  # the hot path: one 20 ms mixed frame, sent on time
            return
        if first < tick - BUFFER_TICKS:
            stream.audio_next_tick = first = tick - BUFFER_TICKS
        if first + per_tick - 1 > tick:
            return
        audio_format = conn.audio_format
        meeting_media = stream.meeting.media
        utterances = meeting_media.speaking_at(first, tick)
        per_participant = params["data_opt"] == 2
        sent = 0
        frames_left = REPLAY_FRAMES_PER_TICK
        while first + per_tick - 1 <= tick and frames_left:
            frames_left -= 1
            last = first + per_tick - 1
            timestamp = b"%d" % self.tick_ms(last)
            if per_participant:
                for utterance in utterances:
                    if utterance.start_tick <= last and utterance.end_tick > first:
                        data = b"".join(utterance.chunk(audio_format, t) for t in range(first, last + 1))
                        participant = utterance.participant
                        conn.send_media(
                            b'{"msg_type":14,"content":{"user_id":%d,"user_name":%s,"data":"%s","length":%d,'
                            b'"timestamp":%s}}' % (participant.rtms_user_id, _json_str(participant.name),
                                                   base64.b64encode(data), len(data), timestamp))
                        sent += 1
            # Mixed audio only while someone speaks in the packet's time: Zoom sends none in silence (docs/ZOOM.md §4.3)
            elif any(utterance.start_tick <= last and utterance.end_tick > first for utterance in utterances):
                if per_tick == 1:
                    data = meeting_media.mixed(audio_format, first, utterances)
                else:
                    data = b"".join(meeting_media.mixed(audio_format, t, utterances) for t in range(first, last + 1))
                conn.send_media(b'{"msg_type":14,"content":{"user_id":0,"data":"%s","length":%d,"timestamp":%s}}'
                                % (base64.b64encode(data), len(data), timestamp))
                sent += 1
            first += per_tick
        stream.audio_next_tick = first
        if sent:
            self._count(stream, "audio", sent)

    def _send_live_mixed(self, stream, conn, tick):
        stream.audio_next_tick = tick + 1
        live = stream.meeting.media.live
        if not live:  # nobody speaks: Zoom sends no mixed audio (docs/ZOOM.md §4.3), only keep-alives
            return
        data = stream.meeting.media.mixed(conn.audio_format, tick, live)
        conn.send_media(b'{"msg_type":14,"content":{"user_id":0,"data":"%s","length":%d,"timestamp":%d}}' % (
            base64.b64encode(data), len(data), self.tick_ms(tick)))
        sent = stream.frames_sent
        sent["audio"] = sent.get("audio", 0) + 1
        self.frames_sent += 1

    def _pump_picture(self, stream, conn, tick, kind):
        params = conn.params[kind]
        every = max(1, round(1000 / TICK_MS / params["fps"]))
        # Due on every `every`-th tick, or on the first tick after it when a late ticker skipped past it.
        if tick < stream.picture_next_tick.get(kind, 0):
            return
        stream.picture_next_tick[kind] = tick - tick % every + every
        meeting = stream.meeting
        source = None
        if kind == "deskshare":
            source = next((p for p in meeting.participants.values() if p.sharing and p.joined), None)
        else:
            if params.get("data_opt") == 4:
                source = next((p for p in meeting.participants.values()
                               if p.rtms_user_id == stream.video_subscription and p.video and p.joined), None)
            else:
                speaker = meeting.participants.get(meeting.active_speaker) if meeting.active_speaker else None
                source = speaker if speaker is not None and speaker.video and speaker.joined else next(
                    (p for p in meeting.participants.values() if p.video and p.joined), None)
        if source is None:
            return
        color = list(meeting.participants).index(source.key)
        picture = self.pictures.get(kind, color, params["resolution"], params["codec"])
        if picture is None:
            return
        data, length = picture
        msg_type = 15 if kind == "video" else 16
        conn.send_media(b'{"msg_type":%d,"content":{"user_id":%d,"user_name":%s,"data":"%s","length":%d,'
                        b'"timestamp":%d}}' % (msg_type, source.rtms_user_id, _json_str(source.name), data, length,
                                               self.tick_ms(tick)))
        self._count(stream, kind, 1)


def _json_str(text):
    return json.dumps(text).encode()
