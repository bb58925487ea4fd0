"""Fault injection through the control API (README "Faults")."""

import logging
import secrets

log = logging.getLogger("zoomsim.faults")

KINDS = {
    "drop_socket", "stall_keepalive", "ignore_keepalive_resp", "freeze_socket", "delay_frames", "reorder_frames",
    "refuse_handshake", "webhook_fail", "webhook_duplicate", "rest_error", "oauth_error",
}
ONE_SHOT = {"refuse_handshake", "webhook_fail", "webhook_duplicate", "rest_error", "oauth_error"}
SOCKET_NAMES = {"signaling", "audio", "video", "deskshare", "transcript", "chat", "all", "all_media"}


class FaultError(ValueError):
    pass


class Faults:
    def __init__(self, sim):
        self.sim = sim
        self.active = []

    def clear(self):
        self.active.clear()
        for stream in self.sim.streams.values():
            for conn in stream.connections_live():
                conn.apply_faults()

    def public(self):
        return list(self.active)

    def add(self, fault):
        kind = fault.get("kind")
        if kind not in KINDS:
            raise FaultError(f"kind must be one of {sorted(KINDS)}")
        fault = dict(fault)
        fault["id"] = secrets.token_hex(4)
        fault.setdefault("count", 1)
        stream_id = fault.get("stream_id")
        if stream_id is not None and stream_id not in self.sim.streams:
            raise FaultError(f"unknown stream_id {stream_id}")
        if fault.get("socket") not in (None, *SOCKET_NAMES):
            raise FaultError(f"socket must be one of {sorted(SOCKET_NAMES)}")
        log.info("event=fault_added kind=%s stream_id=%s", kind, stream_id)
        if kind == "drop_socket":
            if stream_id is None:
                raise FaultError("drop_socket needs stream_id")
            dropped = self.sim.rtms.drop(self.sim.streams[stream_id], fault.get("socket") or "signaling")
            fault["dropped"] = dropped
            return fault
        self.active.append(fault)
        for stream in self.sim.streams.values():
            for conn in stream.connections_live():
                conn.apply_faults()
        return fault

    def _consume(self, fault):
        fault["count"] -= 1
        if fault["count"] <= 0:
            self.active.remove(fault)

    def take_webhook(self, kind, client_id, event):
        for fault in self.active:
            if fault["kind"] == kind and fault.get("client_id") in (None, client_id) and fault.get("event") in (
                    None, event):
                self._consume(fault)
                return True
        return False

    def take_rest_error(self, method, path):
        for fault in self.active:
            if fault["kind"] == "rest_error" and fault.get("method", method).upper() == method and (
                    fault.get("path_contains") or "") in path:
                self._consume(fault)
                return fault
        return None

    def take_oauth_error(self, client_id, grant_type):
        for fault in self.active:
            if fault["kind"] == "oauth_error" and fault.get("client_id") in (None, client_id) and fault.get(
                    "grant_type") in (None, grant_type):
                self._consume(fault)
                return fault
        return None

    def take_handshake_refusal(self, stage):
        for fault in self.active:
            if fault["kind"] == "refuse_handshake" and fault.get("stage", "signaling") == stage:
                self._consume(fault)
                return fault
        return None

    def for_connection(self, stream_id, socket_name):
        """The persistent faults that apply to one live connection."""
        matched = {}
        for fault in self.active:
            if fault["kind"] in ONE_SHOT or fault.get("stream_id") not in (None, stream_id):
                continue
            wanted = fault.get("socket") or fault.get("media")
            if wanted in (None, "all", socket_name) or (wanted == "all_media" and socket_name != "signaling"):
                matched[fault["kind"]] = fault
        return matched
