"""RTMS signaling and media WebSocket servers (docs/ZOOM.md §3, §4, §6) on picows.

picows was chosen by measurement: sending a 700-byte text frame costs a few microseconds, several times less
than aiohttp or websockets, which matters when one process feeds hundreds of 20 ms audio streams.
"""

import asyncio
import json
import logging
import secrets

import picows
from picows import WSMsgType, WSUpgradeResponse, WSUpgradeResponseWithListener

from zoomsim.media import AudioFormat
from zoomsim.media_params import MediaParamError, confirm_media_params, parse_media_type
from zoomsim.protocol import (
    MEDIA_TYPES,
    SUBSCRIBABLE_EVENTS,
    Event,
    Msg,
    Status,
    StopReason,
    handshake_signature,
)

log = logging.getLogger("zoomsim.rtms")

KEEPALIVE_MISSES = 3


def dumps(message):
    return json.dumps(message, separators=(",", ":")).encode()


class Connection(picows.WSListener):
    """One signaling or media WebSocket."""

    def __init__(self, server, kind, stream_id, path_name, request):
        self.server = server
        self.sim = server.sim
        self.kind = kind  # "signaling" | "media"
        self.stream_id = stream_id
        self.path_name = path_name  # "signaling" or the media URL's type
        self.stream = None  # set once the handshake succeeded
        self.types = ()  # media types carried (media connections)
        self.params = {}
        self.ready = False  # media only flows after CLIENT_READY_ACK
        self.transport = None
        self.closing = False
        self.keepalive_sequence = 0
        self.keepalive_unanswered = 0
        self.carried_data = False  # something other than a keep-alive was sent since the last keep-alive sweep
        self.stall_keepalive = self.ignore_keepalive_resp = self.frozen = False
        self.delay_s = 0.0
        self.reorder = False
        self._held_frame = None
        self._fragments = []
        headers = request.headers
        self.record = {
            "id": secrets.token_hex(4), "kind": path_name, "server": server.url, "opened_at": self.sim.clock.now_ms(),
            "closed_at": None,
            "close_reason": None, "handshake_status": None, "user_agent": headers.get("User-Agent", ""),
            "subprotocol_offered": headers.get("Sec-WebSocket-Protocol", ""),
            "has_websocket_token": "X-WebSocket-Token" in headers, "client_agent": None,
            "keepalive_sent": 0, "keepalive_answered": 0,
        }

    @property
    def socket_name(self):
        return "signaling" if self.kind == "signaling" else self.path_name

    # -- picows callbacks -----------------------------------------------------------------------------------------

    def on_ws_connected(self, transport):
        self.transport = transport
        self.server.connections.add(self)

    def on_ws_frame(self, transport, frame):
        msg_type = frame.msg_type
        if msg_type == WSMsgType.CLOSE:
            self.record["close_reason"] = self.record["close_reason"] or f"client close {int(frame.get_close_code())}"
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            # Gone for the stream now, not once the close is flushed: a client that closes and reconnects at
            # once (Zoom's SDK does) is not refused as a duplicate of itself.
            self.release()
            return
        if msg_type == WSMsgType.CONTINUATION:
            self._fragments.append(frame.get_payload_as_bytes())
            if not frame.fin:
                return
            payload = b"".join(self._fragments)
            self._fragments = []
        elif msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            if not frame.fin:
                self._fragments = [frame.get_payload_as_bytes()]
                return
            payload = frame.get_payload_as_bytes()
        else:
            return  # ping/pong are answered by picows
        if self.frozen:
            return
        try:
            message = json.loads(payload)
        except ValueError:
            message = None
        try:
            self.handle(message)
        except Exception:  # keep serving; a bug in one message must not kill the simulator
            log.exception("event=rtms_handler_failed stream_id=%s", self.stream_id)

    def on_ws_disconnected(self, transport):
        self.server.connections.discard(self)
        self.record["closed_at"] = self.sim.clock.now_ms()
        if self.record["close_reason"] is None:
            self.record["close_reason"] = "closed by zoomsim" if self.closing else "connection lost"
        self.release()

    def release(self):
        """This socket no longer serves its stream; its loss interrupts the stream unless Zoom closed it."""
        stream = self.stream
        if stream is None or not stream.live:
            return
        if self.kind == "signaling":
            if stream.signaling is self:
                stream.signaling = None
                if not self.closing:
                    self.sim.signaling_lost(stream, StopReason.AWAIT_RECONNECTION_TIMEOUT)
        else:
            lost = [t for t in self.types if stream.media.get(t) is self]
            for media_type in lost:
                del stream.media[media_type]
            if lost and not self.closing and stream.signaling is not None:
                self.sim.media_lost(stream, lost, StopReason.AWAIT_RECONNECTION_TIMEOUT)

    # -- sending --------------------------------------------------------------------------------------------------

    def send_json(self, message):
        self.send_bytes(dumps(message))

    def send_bytes(self, data):
        if self.transport is not None and not self.frozen and not self.closing:
            self.carried_data = True
            self.transport.send(WSMsgType.TEXT, data)

    def send_media(self, data):
        """Media frames pass through the delay/reorder faults."""
        if self.reorder:
            if self._held_frame is None:
                self._held_frame = data
                return
            earlier, self._held_frame = self._held_frame, None
            self._send_media_now(data)  # the later frame goes first
            self._send_media_now(earlier)
            return
        self._send_media_now(data)

    def _send_media_now(self, data):
        if self.delay_s:
            self.sim.loop.call_later(self.delay_s, self.send_bytes, data)
        else:
            self.send_bytes(data)

    def close(self, code=1000, abort=False):
        if self.transport is None or self.closing:
            return
        self.closing = True
        if abort:
            self.record["close_reason"] = "dropped (fault)"
            self.transport.disconnect(graceful=False)
            return
        self.record["close_reason"] = self.record["close_reason"] or f"closed by zoomsim {code}"
        self.transport.send_close(picows.WSCloseCode(code))
        self.transport.disconnect()

    def apply_faults(self):
        faults = self.sim.faults.for_connection(self.stream.id if self.stream else self.stream_id, self.socket_name)
        self.stall_keepalive = "stall_keepalive" in faults
        self.ignore_keepalive_resp = "ignore_keepalive_resp" in faults
        self.frozen = "freeze_socket" in faults
        self.delay_s = faults["delay_frames"].get("delay_ms", 0) / 1000 if "delay_frames" in faults else 0.0
        self.reorder = "reorder_frames" in faults
        if not self.reorder and self._held_frame is not None:
            held, self._held_frame = self._held_frame, None
            self._send_media_now(held)

    # -- receiving ------------------------------------------------------------------------------------------------

    def handle(self, message):
        if not isinstance(message, dict):
            if self.stream is None:
                self.refuse(Status.INVALID_PAYLOAD, "the message is not a JSON object")
            return
        msg_type = message.get("msg_type")
        if msg_type == Msg.KEEP_ALIVE_RESP:
            if not self.ignore_keepalive_resp:
                self.keepalive_unanswered = 0
                self.record["keepalive_answered"] += 1
            return
        if msg_type == Msg.KEEP_ALIVE_REQ:
            self.send_json({"msg_type": Msg.KEEP_ALIVE_RESP, "timestamp": message.get("timestamp"),
                            "sequence": message.get("sequence")})
            return
        if self.stream is None:
            if self.kind == "signaling":
                self.signaling_handshake(message)
            else:
                self.media_handshake(message)
            return
        if self.kind == "signaling":
            self.signaling_message(msg_type, message)

    def refuse(self, status, reason, response_type=None):
        response_type = response_type or (
            Msg.SIGNALING_HAND_SHAKE_RESP if self.kind == "signaling" else Msg.DATA_HAND_SHAKE_RESP)
        self.record["handshake_status"] = int(status)
        self.send_json({"msg_type": response_type, "protocol_version": 1, "sequence": 0, "status_code": int(status),
                        "reason": reason})
        stream = self.sim.streams.get(self.stream_id)
        if stream is not None:
            stream.connections.append(self.record)
            stream.record_error(status, reason)
        log.info("event=handshake_refused kind=%s stream_id=%s status=%d reason=%r", self.socket_name,
                 self.stream_id, int(status), reason)
        self.close(1000)

    def _check_common(self, message, expected_type):
        """Checks shared by both handshakes; returns the stream or None after refusing."""
        if message.get("msg_type") != expected_type:
            self.refuse(Status.INVALID_MESSAGE_TYPE,
                        f"expected msg_type {int(expected_type)} ({expected_type.name}) first")
            return None
        fault = self.sim.faults.take_handshake_refusal(self.kind)
        if fault is not None:
            self.refuse(fault.get("status_code", Status.INTERNAL_EXCEPTION), "injected fault: handshake refused")
            return None
        stream_id = message.get("rtms_stream_id")
        meeting_id = message.get("meeting_uuid") or message.get("webinar_uuid") or message.get("session_id")
        signature = message.get("signature")
        if message.get("protocol_version", 1) != 1:
            self.refuse(Status.INVALID_PAYLOAD, "protocol_version must be 1")
            return None
        if not isinstance(stream_id, str) or not isinstance(meeting_id, str) or not isinstance(signature, str):
            self.refuse(Status.INVALID_PAYLOAD, "meeting_uuid, rtms_stream_id and signature are required strings")
            return None
        if stream_id != self.stream_id:
            self.refuse(Status.INVALID_RTMS_STREAM_ID, "rtms_stream_id does not match the URL")
            return None
        stream = self.sim.streams.get(stream_id)
        if stream is None:
            self.refuse(Status.INVALID_RTMS_STREAM_ID, "unknown rtms_stream_id")
            return None
        if not stream.live:
            self.refuse(Status.INVALID_RTMS_STREAM_ID, "the stream has been terminated")
            return None
        if meeting_id != stream.meeting.uuid:
            self.refuse(Status.INVALID_PAYLOAD, "meeting_uuid does not match the stream")
            return None
        expected = handshake_signature(stream.app.client_id, stream.app.client_secret, meeting_id, stream_id)
        if signature.lower() != expected:
            self.refuse(Status.INVALID_SIGNATURE, "invalid signature")
            return None
        return stream

    def signaling_handshake(self, message):
        stream = self._check_common(message, Msg.SIGNALING_HAND_SHAKE_REQ)
        if stream is None:
            return
        self.record["client_agent"] = message.get("rtms_client_agent")
        if stream.signaling is not None:
            self.refuse(Status.DUPLICATE_SIGNAL_REQUEST,
                        "duplicate signal request: a signaling connection for this stream is still open")
            return
        first = not any(r["kind"] == "signaling" and r["handshake_status"] == 0 for r in stream.connections)
        self.stream = stream
        stream.signaling = self
        self.record["handshake_status"] = 0
        stream.connections.append(self.record)
        if first and message.get("buffer_data") is False:
            stream.audio_next_tick = self.sim.ticker.tick_index()
        self.apply_faults()
        urls = {t: self.sim.media_url(stream, t) for t in MEDIA_TYPES if t in stream.app.media_types}
        urls["all"] = self.sim.media_url(stream, "all")
        self.send_json({"msg_type": Msg.SIGNALING_HAND_SHAKE_RESP, "protocol_version": 1,
                        "sequence": message.get("sequence", 0), "status_code": 0, "reason": "",
                        "media_server": {"server_urls": urls}})
        log.info("event=signaling_connected meeting_uuid=%s stream_id=%s", stream.meeting.uuid, stream.id)
        self.sim.signaling_reconnected(stream)

    def media_handshake(self, message):
        stream = self._check_common(message, Msg.DATA_HAND_SHAKE_REQ)
        if stream is None:
            return
        if stream.signaling is None:
            self.refuse(Status.INVALID_RTMS_STREAM_ID, "no live signaling connection for this stream")
            return
        try:
            types = parse_media_type(message.get("media_type"), stream.app.media_types)
            params = confirm_media_params(message.get("media_params"), types)
        except MediaParamError as error:
            self.refuse(error.status, error.reason)
            return
        if message.get("media_type") == 32:
            if stream.media:
                self.refuse(Status.MEDIA_DATA_ALL_CONNECTION_EXIST,
                            "per-type media connections already exist for this stream")
                return
        else:
            taken = [t for t in types if t in stream.media]
            if taken:
                self.refuse(Status.DUPLICATE_MEDIA_DATA_CONNECTION,
                            f"a media connection for {', '.join(taken)} already exists")
                return
        self.stream = stream
        self.types = types
        self.params = params
        if "audio" in params:
            self.audio_format = AudioFormat.from_params(params["audio"])
        for media_type in types:
            stream.media[media_type] = self
        self.record["handshake_status"] = 0
        self.record["media_types"] = list(types)
        stream.connections.append(self.record)
        self.apply_faults()
        self.send_json({"msg_type": Msg.DATA_HAND_SHAKE_RESP, "protocol_version": 1,
                        "sequence": message.get("sequence", 0), "status_code": 0, "reason": "",
                        "payload_encrypted": False, "media_params": params})
        log.info("event=media_connected meeting_uuid=%s stream_id=%s types=%s", stream.meeting.uuid, stream.id,
                 ",".join(types))
        self.sim.media_reconnected(stream, types)

    def signaling_message(self, msg_type, message):
        stream = self.stream
        now = self.sim.clock.now_ms()
        if msg_type == Msg.CLIENT_READY_ACK:
            if message.get("rtms_stream_id") not in (None, stream.id):
                stream.record_error(Status.INVALID_CLIENT_READY_ACK, "rtms_stream_id does not match")
                return
            for conn in set(stream.media.values()):
                conn.ready = True
            if not stream.ready:  # a repeated ACK (e.g. after a media-only reconnect) only opens the new sockets
                self.sim.stream_ready(stream)
        elif msg_type == Msg.EVENT_SUBSCRIPTION:
            self.subscribe(message.get("events"))
        elif msg_type == Msg.SESSION_STATE_REQ:
            ok = message.get("rtms_session_id") == stream.session_id and stream.session_id is not None
            self.send_json({"msg_type": Msg.SESSION_STATE_RESP, "rtms_session_id": message.get("rtms_session_id"),
                            "state": int(stream.session_state), "timestamp": now,
                            "status_code": 0 if ok else int(Status.INVALID_RTMS_SESSION_ID)})
        elif msg_type == Msg.STREAM_STATE_REQ:
            ok = message.get("rtms_stream_id") in (None, stream.id)
            self.send_json({"msg_type": Msg.STREAM_STATE_RESP, "rtms_stream_id": stream.id,
                            "state": int(stream.stream_state), "timestamp": now,
                            "status_code": 0 if ok else int(Status.INVALID_RTMS_STREAM_ID)})
        elif msg_type == Msg.STREAM_CLOSE_REQ:
            self.send_json({"msg_type": Msg.STREAM_CLOSE_RESP, "rtms_stream_id": stream.id, "status_code": 0,
                            "reason": "OK", "timestamp": now})
            self.sim.stop_stream(stream, StopReason.RECEIVER_REQUEST_CLOSE)
        elif msg_type == Msg.VIDEO_SUBSCRIPTION_REQ:
            self.video_subscription(message)
        else:
            stream.record_error(Status.INVALID_MESSAGE_TYPE, f"unexpected msg_type {msg_type!r} on signaling")

    def subscribe(self, events):
        stream = self.stream
        if not isinstance(events, list) or not events:
            stream.record_error(Status.INVALID_EVENTS, "events must be a non-empty list")
            return
        for item in events:
            if not isinstance(item, dict) or not isinstance(item.get("event_type"), int) or not isinstance(
                    item.get("subscribe", True), bool):
                stream.record_error(Status.INVALID_EVENT_SUBSCRIBE, f"bad subscription entry {item!r}")
                continue
            event_type = item["event_type"]
            if event_type in (Event.FIRST_PACKET_TIMESTAMP, Event.MEDIA_CONNECTION_INTERRUPTED):
                continue  # sent automatically
            if event_type not in SUBSCRIBABLE_EVENTS:
                stream.record_error(Status.INVALID_EVENT_TYPE, f"unknown event_type {event_type}")
                continue
            if item.get("subscribe", True):
                added = event_type not in stream.subscribed_events
                stream.subscribed_events.add(event_type)
                if added and event_type == Event.PARTICIPANT_JOIN:
                    present = [{"user_id": p.rtms_user_id, "user_name": p.name} for p in stream.meeting.present()]
                    if present:
                        stream.send_event(Event.PARTICIPANT_JOIN, participants=present)
            else:
                stream.subscribed_events.discard(event_type)

    def video_subscription(self, message):
        stream = self.stream
        user_id = message.get("user_id")
        status, reason = Status.OK, ""
        known = {p.rtms_user_id for p in stream.meeting.participants.values()}
        if not isinstance(user_id, int) or user_id not in known:
            status, reason = Status.INVALID_PAYLOAD, "unknown user_id"
        elif message.get("subscribe", True):
            if stream.video_subscription == user_id:
                status, reason = Status.DUPLICATE_VIDEO_SUBSCRIPTION, "already subscribed to this user"
            else:
                stream.video_subscription = user_id
        elif stream.video_subscription == user_id:
            stream.video_subscription = None
        self.send_json({"msg_type": Msg.VIDEO_SUBSCRIPTION_RESP, "user_id": user_id, "status_code": int(status),
                        "reason": reason, "timestamp": self.sim.clock.now_ms()})


class RtmsServer:
    def __init__(self, sim):
        self.sim = sim
        self.connections = set()
        self.server = None
        self.url = ""  # ws://host:port, what streams living here carry in their server_urls
        self._keepalive_handle = None

    async def listen(self, host, port):
        self.sim.loop = asyncio.get_running_loop()
        self.server = await picows.ws_create_server(self._route, host, port, websocket_handshake_timeout=10,
                                                    max_frame_size=4 * 1024 * 1024)
        self.url = f"ws://{self.sim.config.url_host}:{self.server.sockets[0].getsockname()[1]}"
        self._schedule_keepalive()
        return self.server

    def stop(self):
        if self._keepalive_handle:
            self._keepalive_handle.cancel()
        for conn in list(self.connections):
            conn.close(1001)
        if self.server:
            self.server.close()

    def _route(self, request):
        parts = request.path.decode("latin-1").split("?")[0].strip("/").split("/")
        if self.sim.faults.take_handshake_refusal("upgrade") is not None:
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_error_response(503, b"injected fault: upgrade refused"), None)
        stream = self.sim.streams.get(parts[1]) if len(parts) in (2, 3) else None
        if stream is not None and stream.rtms_url != self.url:  # its server failed over (zoomsim/chaos.py)
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_error_response(503, b"this RTMS server no longer serves the stream"), None)
        if len(parts) == 2 and parts[0] == "signaling":
            return Connection(self, "signaling", parts[1], "signaling", request)
        if len(parts) == 3 and parts[0] == "media" and parts[2] in (*MEDIA_TYPES, "all"):
            return Connection(self, "media", parts[1], parts[2], request)
        return None  # 404

    def drop(self, stream, socket_name):
        """Fault: abort connections of `stream` without a close frame."""
        targets = []
        if socket_name in ("signaling", "all") and stream.signaling is not None:
            targets.append(stream.signaling)
        for conn in set(stream.media.values()):
            if socket_name in ("all", "all_media", conn.path_name) or socket_name in conn.types:
                targets.append(conn)
        for conn in targets:
            conn.record["close_reason"] = "dropped (fault)"
            conn.transport.disconnect(graceful=False)
        return [conn.record["id"] for conn in targets]

    def _schedule_keepalive(self):
        self._keepalive_handle = self.sim.loop.call_later(self.sim.config.keepalive_interval, self._keepalive_sweep)

    def _keepalive_sweep(self):
        """One timer for every socket: KEEP_ALIVE_REQ to each socket that carried nothing else since the last sweep
        (Zoom sends keep-alives only in silence: a socket carrying speech gets none, docs/ZOOM.md §6.1); a socket
        with 3 unanswered requests is dead."""
        self._schedule_keepalive()
        now = self.sim.clock.now_ms()
        for conn in list(self.connections):
            stream = conn.stream
            if stream is None or conn.closing or not stream.live:
                continue
            if conn.keepalive_unanswered >= KEEPALIVE_MISSES:
                self._keepalive_timeout(conn)
                continue
            carried_data, conn.carried_data = conn.carried_data, False
            if carried_data or conn.stall_keepalive or conn.frozen:
                continue
            conn.keepalive_sequence += 1
            conn.keepalive_unanswered += 1
            conn.record["keepalive_sent"] += 1
            # Past send_bytes: a keep-alive is not data.
            conn.transport.send(WSMsgType.TEXT,
                                b'{"msg_type":12,"timestamp":%d,"sequence":%d}' % (now, conn.keepalive_sequence))

    def _keepalive_timeout(self, conn):
        stream = conn.stream
        log.info("event=keepalive_timeout kind=%s meeting_uuid=%s stream_id=%s", conn.socket_name,
                 stream.meeting.uuid, stream.id)
        conn.record["close_reason"] = "keep-alive timeout (3 missed)"
        if conn.kind == "signaling":
            stream.signaling = None
            conn.close(1000)
            self.sim.signaling_lost(stream, StopReason.KEEP_ALIVE_TIMEOUT)
        else:
            lost = [t for t in conn.types if stream.media.get(t) is conn]
            for media_type in lost:
                del stream.media[media_type]
            conn.close(1000)
            self.sim.media_lost(stream, lost, StopReason.KEEP_ALIVE_TIMEOUT)

