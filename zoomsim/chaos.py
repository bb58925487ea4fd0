"""Chaos: Zoom's four reconnection cases played on live streams (docs/ZOOM.md §6.2b; zoomsim/README.md
"Chaos"), one at a time through `POST /_sim/streams/{id}/chaos` or at random every few seconds
(`POST /_sim/chaos`), as Zoom's own `reconnection_and_chaos_mode_js` sample does.

- `server_failover`: the RTMS server holding the stream fails. Its sockets die without a word, the stream moves to
  the other RTMS server (a second listener, started on first use), and `meeting.rtms_started` is sent again with
  the new `server_urls`. The failed server refuses the stream from then on; 60 s to reconnect, else stop 19.
- `signaling_drop`: the signaling socket dies: every socket closes, `meeting.rtms_interrupted`, 60 s. With
  `half_open` the path broke without a reset: Zoom gives up on every socket of the stream while the client's
  sockets stay open and silent, so only `meeting.rtms_interrupted` tells the client before its keep-alive watch.
- `media_drop`: one media socket dies (`socket`, default the first one): EVENT_UPDATE 7 on signaling, and with
  `state_update` also STREAM_STATE_UPDATE state 2 reason 14, which says the same; 65 s.
- `error_stop`: the stream ends with an error reason (`reason`, 10–19 or 24; default 13).
"""

import asyncio
import logging
import random

from zoomsim.protocol import Msg, StopReason, StreamState
from zoomsim.rtms_server import RtmsServer

log = logging.getLogger("zoomsim.chaos")

CASES = ("server_failover", "signaling_drop", "media_drop", "error_stop")
ERROR_STOP_REASONS = frozenset((*range(10, 20), 24))


class ChaosError(ValueError):
    pass


class Chaos:
    def __init__(self, sim):
        self.sim = sim
        self.standby = None  # the second RTMS server, listening once a failover needs it
        self.played = []     # what was played, newest last: {case, stream_id, at, ...}
        self._mode = None    # the random mode's task

    async def play(self, stream, case, options):
        if case not in CASES:
            raise ChaosError(f"case must be one of {list(CASES)}")
        if not stream.live:
            raise ChaosError(f"stream {stream.id} has stopped")
        if case == "server_failover":
            detail = await self._server_failover(stream)
        elif case == "signaling_drop":
            detail = self._signaling_drop(stream, bool(options.get("half_open")))
        elif case == "media_drop":
            detail = self._media_drop(stream, options.get("socket"), bool(options.get("state_update")))
        else:
            detail = self._error_stop(stream, options.get("reason", int(StopReason.SIGNAL_CONNECTION_INTERRUPTED)))
        record = {"case": case, "stream_id": stream.id, "at": self.sim.clock.now_ms(), **detail}
        self.played.append(record)
        log.info("event=chaos case=%s stream_id=%s detail=%s", case, stream.id, detail)
        return record

    # -- the four cases ---------------------------------------------------------------------------------------

    async def _server_failover(self, stream):
        if self.standby is None:
            standby = RtmsServer(self.sim)
            await standby.listen(self.sim.config.host, 0)
            self.standby = standby
        primary_url = self.sim.rtms_url
        old_url = stream.rtms_url
        stream.rtms_url = self.standby.url if old_url == primary_url else primary_url
        for conn in stream.connections_live():
            conn.close(abort=True)  # a dead server: no close frame, and its own disconnect reports nothing
            conn.record["close_reason"] = "rtms server failed (chaos)"
        stream.signaling = None
        self.sim.signaling_lost(stream, StopReason.AWAIT_RECONNECTION_TIMEOUT, interrupted_webhook=False)
        self.sim.send_rtms_started(stream)
        return {"from": old_url, "to": stream.rtms_url}

    def _signaling_drop(self, stream, half_open):
        if stream.signaling is None:
            raise ChaosError("the stream has no signaling connection to drop")
        if not half_open:
            return {"dropped": self.sim.rtms.drop(stream, "signaling")}
        silenced = list(stream.connections_live())
        for conn in silenced:
            conn.frozen = True  # nothing more sent or read; the client's TCP socket stays open
            conn.record["close_reason"] = "given up by zoom (chaos: half open)"
        stream.signaling = None
        stream.media.clear()
        self.sim.signaling_lost(stream, StopReason.AWAIT_RECONNECTION_TIMEOUT)
        return {"half_open": [conn.record["id"] for conn in silenced]}

    def _media_drop(self, stream, socket, state_update):
        if stream.signaling is None or not stream.media:
            raise ChaosError("the stream has no media connection to drop")
        socket = socket or next(iter(stream.media.values())).path_name
        dropped = self.sim.rtms.drop(stream, socket)
        if not dropped:
            raise ChaosError(f"the stream has no {socket} connection")
        if state_update:
            stream.send_signaling({"msg_type": Msg.STREAM_STATE_UPDATE, "rtms_stream_id": stream.id,
                                   "state": int(StreamState.INTERRUPTED),
                                   "reason": int(StopReason.DATA_CONNECTION_INTERRUPTED),
                                   "timestamp": self.sim.clock.now_ms()})
        return {"socket": socket, "dropped": dropped, "state_update": state_update}

    def _error_stop(self, stream, reason):
        if type(reason) is not int or reason not in ERROR_STOP_REASONS:
            raise ChaosError("reason must be an error stop reason: 10 to 19, or 24")
        self.sim.stop_stream(stream, reason)
        return {"reason": reason}

    # -- the random mode --------------------------------------------------------------------------------------

    def start_mode(self, interval_s, cases):
        if not isinstance(interval_s, (int, float)) or interval_s <= 0:
            raise ChaosError("interval_s must be a positive number")
        if not cases or not isinstance(cases, list) or any(case not in CASES for case in cases):
            raise ChaosError(f"cases must be a list drawn from {list(CASES)}")
        self.stop_mode()
        self._mode = self.sim.spawn(self._run_mode(float(interval_s), list(cases)))
        return self.public()

    def stop_mode(self):
        if self._mode is not None:
            self._mode.cancel()
            self._mode = None

    async def _run_mode(self, interval_s, cases):
        while True:
            await asyncio.sleep(interval_s)
            ready = [s for s in self.sim.streams.values() if s.live and s.ready]
            if not ready:
                continue
            try:
                await self.play(random.choice(ready), random.choice(cases), {})
            except ChaosError as exc:
                log.info("event=chaos_skipped reason=%s", exc)

    def public(self):
        return {"mode": self._mode is not None, "standby_url": self.standby.url if self.standby else None,
                "played": list(self.played)}

    async def stop(self):
        self.stop_mode()
        if self.standby is not None:
            self.standby.stop()
