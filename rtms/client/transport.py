"""WebSocket transports for the RTMS client: picows (measured fast path) and websockets (pure-Python fallback).

Both expose the same small surface, :class:`Connection`:

* ``await connect(url, handler, timeout=..., label=...)`` opens a client WebSocket;
* ``handler.on_text(conn, payload)`` is called synchronously for every complete text message, with ``payload``
  a ``memoryview``/``bytes``/``str`` that is only valid during the call;
* ``handler.on_refused(conn, kind)`` is called for a frame that is not text (binary frames are not RTMS);
* ``handler.on_closed(conn)`` is called once when the socket is gone, whoever closed it;
* ``conn.send(data)`` sends one text frame, ``conn.abort()`` drops the socket at once without sending anything,
  ``await conn.close(timeout)`` sends a close frame and waits (bounded) until the socket is gone.

:func:`default_backend` picks picows when it imports, else websockets.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

log = logging.getLogger("rtms.client")


class FrameHandler(Protocol):
    def on_text(self, conn: Connection, payload: Any) -> None: ...
    def on_refused(self, conn: Connection, kind: str) -> None: ...
    def on_closed(self, conn: Connection) -> None: ...


class Connection(Protocol):
    label: str
    closed: bool

    def send(self, data: bytes) -> None: ...
    def abort(self) -> None: ...
    async def close(self, timeout: float) -> None: ...


class Backend(Protocol):
    name: str

    async def connect(self, url: str, handler: FrameHandler, *, timeout: float, label: str) -> Connection: ...


# ---------------------------------------------------------------------------------------------------------------
# picows

try:
    import picows
    from picows import WSCloseCode, WSListener, WSMsgType
except ImportError:  # pragma: no cover - the fallback below is used instead
    picows = None


if picows is not None:
    # picows logs every connect/disconnect at INFO; the client logs its own structured lines for those. Given a
    # logger, picows makes a child of it for every connection (575 bytes each, measured with tracemalloc: 1.1 KiB
    # per stream); given an adapter, it logs through it as it is.
    _PICOWS_LOG = logging.LoggerAdapter(logging.getLogger("rtms.client.picows"))
    _PICOWS_LOG.logger.setLevel(logging.WARNING)
    _TEXT = WSMsgType.TEXT
    _CLOSE = WSMsgType.CLOSE
    _CONTINUATION = WSMsgType.CONTINUATION
    _BINARY = WSMsgType.BINARY

    class _PicowsConnection(WSListener):
        """One RTMS socket. It is its own picows listener so a frame costs one Python call to reach the client."""

        __slots__ = ("label", "closed", "_handler", "_transport", "_fragments", "_disconnected")

        def __init__(self, handler: FrameHandler, label: str) -> None:
            self.label = label
            self.closed = False
            self._handler = handler
            self._transport: Any = None
            self._fragments: bytearray | None = None  # a fragmented text message being reassembled (rare)

        def on_ws_connected(self, transport: Any) -> None:
            self._transport = transport

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            msg_type = frame.msg_type
            if msg_type is _TEXT and frame.fin:
                self._handler.on_text(self, frame.get_payload_as_memoryview())
            elif msg_type is _CLOSE:
                # Answer the server's close and drop the socket: nothing more will come.
                transport.send_close(WSCloseCode.OK)
                transport.disconnect()
            elif msg_type is _TEXT:
                self._fragments = bytearray(frame.get_payload_as_memoryview())
            elif msg_type is _CONTINUATION and self._fragments is not None:
                self._fragments += frame.get_payload_as_memoryview()
                if frame.fin:
                    message, self._fragments = self._fragments, None
                    self._handler.on_text(self, message)
            elif msg_type is _BINARY or msg_type is _CONTINUATION:
                self._handler.on_refused(self, "binary_frame")
            # PING is answered by picows itself; PONG needs nothing.

        def on_ws_disconnected(self, transport: Any) -> None:
            if not self.closed:
                self.closed = True
                self._handler.on_closed(self)

        def send(self, data: bytes) -> None:
            if not self.closed:
                self._transport.send(_TEXT, data)

        def abort(self) -> None:
            if self._transport is not None:
                self._transport.disconnect(graceful=False)

        async def close(self, timeout: float) -> None:
            transport = self._transport
            if transport is None or self.closed:
                return
            transport.send_close(WSCloseCode.OK)
            try:
                await asyncio.wait_for(transport.wait_disconnected(), timeout)
            except Exception:  # noqa: BLE001 - the peer did not finish the close (timed out or failed): drop it
                transport.disconnect(graceful=False)

    class _CappedReads(asyncio.BufferedProtocol):
        """Sits between the asyncio transport and picows's protocol and hands the kernel at most ``cap`` bytes
        of picows's read buffer per read.

        picows doubles its read buffer whenever one read fills it and never shrinks it, so a single stall of
        the event loop (a GC pass, a burst of handshakes) left every socket with a buffer as large as the
        backlog it met: tens of KiB per stream for good. Capped reads keep the buffer at twice the cap or the
        largest message, whichever is more (a video frame still fits: picows grows the buffer to hold a whole
        frame); the price is one Python call per read, a few per tick for a paced socket. Only `get_buffer` is
        ours: uvloop looks up `buffer_updated` once, when the protocol is set, so picows's own is handed over
        as an attribute and a read's data reaches picows with no Python frame between (docs/PERFORMANCE.md,
        2026-12-03).
        """

        __slots__ = ("_inner", "_cap", "buffer_updated")

        def __init__(self, inner: Any, cap: int) -> None:
            self._inner = inner
            self._cap = cap
            self.buffer_updated = inner.buffer_updated

        def get_buffer(self, sizehint: int) -> Any:
            view = self._inner.get_buffer(sizehint)
            return view[:self._cap] if len(view) > self._cap else view

        def connection_made(self, transport: Any) -> None:  # pragma: no cover - installed after the handshake
            self._inner.connection_made(transport)

        def connection_lost(self, exc: BaseException | None) -> None:
            self._inner.connection_lost(exc)

        def eof_received(self) -> Any:
            return self._inner.eof_received()

        def pause_writing(self) -> None:
            self._inner.pause_writing()

        def resume_writing(self) -> None:
            self._inner.resume_writing()

    class PicowsBackend:
        name = "picows"

        def __init__(self, read_buffer_size: int = 2048, use_aiofastnet: bool = False,
                     read_cap: int | None = 2048) -> None:
            # picows's default 16 KiB read buffer per socket would alone eat most of the 64 KiB per-stream
            # budget; an RTMS audio frame is ~1 KiB and the buffer grows when a bigger one (video) arrives.
            # aiofastnet (picows's default when installed) costs ~90 KiB more per stream, measured.
            self.read_buffer_size = read_buffer_size
            self.use_aiofastnet = use_aiofastnet
            self.read_cap = read_cap  # bytes per read

        async def connect(self, url: str, handler: FrameHandler, *, timeout: float, label: str) -> Connection:
            transport, conn = await asyncio.wait_for(
                picows.ws_connect(lambda: _PicowsConnection(handler, label), url,
                                  websocket_handshake_timeout=timeout,
                                  read_buffer_init_size=self.read_buffer_size,
                                  max_frame_size=64 * 1024 * 1024,
                                  logger_name=_PICOWS_LOG, use_aiofastnet=self.use_aiofastnet),
                timeout)
            if conn is None or transport.is_disconnected:  # the peer hung up right after the upgrade
                raise ConnectionError(f"{label} closed during the WebSocket upgrade")
            if self.read_cap:
                raw = transport.underlying_transport
                raw.set_protocol(_CappedReads(raw.get_protocol(), self.read_cap))
            return conn


# ---------------------------------------------------------------------------------------------------------------
# websockets (maintained pure-Python fallback)

try:
    from websockets.asyncio.client import connect as _websockets_connect
    from websockets.exceptions import ConnectionClosed as _WebsocketsClosed
except ImportError:  # pragma: no cover
    _websockets_connect = None


class _WebsocketsConnection:
    __slots__ = ("label", "closed", "_handler", "_ws", "_reader", "_pending_sends")

    def __init__(self, ws: Any, handler: FrameHandler, label: str) -> None:
        self.label = label
        self.closed = False
        self._handler = handler
        self._ws = ws
        self._pending_sends: set[asyncio.Task[None]] = set()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self._ws:
                if isinstance(message, str):
                    self._handler.on_text(self, message)
                else:
                    self._handler.on_refused(self, "binary_frame")
        except _WebsocketsClosed:
            pass
        except Exception as exc:  # noqa: BLE001 - a handler bug must not leave the socket half-dead
            log.warning("event=socket_reader_failed socket=%s error=%s", self.label, type(exc).__name__)
        finally:
            self.closed = True
            self._ws.transport.abort()
            self._handler.on_closed(self)

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        task = asyncio.get_running_loop().create_task(self._send(data))
        self._pending_sends.add(task)
        task.add_done_callback(self._pending_sends.discard)

    async def _send(self, data: bytes) -> None:
        try:
            await self._ws.send(data, text=True)
        except _WebsocketsClosed:
            pass

    def abort(self) -> None:
        self._ws.transport.abort()

    async def close(self, timeout: float) -> None:
        if self.closed:
            return
        try:
            await asyncio.wait_for(self._ws.close(), timeout)
        except Exception:  # noqa: BLE001 - the peer did not finish the close (timed out or failed): drop it
            self._ws.transport.abort()


class WebsocketsBackend:
    name = "websockets"

    async def connect(self, url: str, handler: FrameHandler, *, timeout: float, label: str) -> Connection:
        ws = await _websockets_connect(url, open_timeout=timeout, ping_interval=None, compression=None,
                                       max_size=64 * 1024 * 1024, close_timeout=timeout)
        return _WebsocketsConnection(ws, handler, label)


def default_backend() -> Backend:
    if picows is not None:
        return PicowsBackend()
    if _websockets_connect is not None:
        return WebsocketsBackend()
    raise RuntimeError("neither picows nor websockets is installed")


def backend_named(name: str) -> Backend:
    if name == "picows" and picows is not None:
        return PicowsBackend()
    if name == "websockets" and _websockets_connect is not None:
        return WebsocketsBackend()
    raise ValueError(f"WebSocket backend {name!r} is not available")
