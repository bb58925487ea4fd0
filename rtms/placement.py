"""Where a stream is held: capacity-aware placement over every worker process of the fleet
(docs/ARCHITECTURE.md, "Several worker machines").

Each session host publishes its load (streams held + claims waiting in its inbox) and its capacity
(RTMS_STREAMS_PER_PROCESS) with a heartbeat every lease ttl/3. `place(stream_id)` runs one Redis script: the
least loaded process whose heartbeat is fresh and whose load is under its capacity gets the stream pushed onto
its own inbox (a Redis list its host pops and claims from), its load counted up at once so two placements never
overfill it. When every process is full the stream is recorded as waiting (`waiting_streams()`, the console and
the metric rtms_streams_waiting_for_capacity); a process with room places it at its next heartbeat, and the
reconciler on its next tick. A process that died without leaving is forgotten by the fleet's sweep (HEARTBEAT).

A placement is remembered for a lease ttl, so the reconciler, Zoom's retried webhooks and a handover place a
stream once; the lease (rtms.leases) still decides who holds it, so a stream placed twice is held once.
"""

import logging
import time

from django.conf import settings
from redis.exceptions import RedisError

from rtms.redis_connection import key, redis_client

log = logging.getLogger("rtms.placement")

# Keys are built in the script from the namespace prefix (one Redis, no cluster: docs/DEPLOY.md).
PLACE = """
local prefix, stream, now, stale, remember = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local placed = prefix .. 'placed:' .. stream
local earlier = redis.call('GET', placed)
if earlier then return earlier end
local loads = redis.call('ZRANGE', prefix .. 'load', 0, -1, 'WITHSCORES')
for i = 1, #loads, 2 do
  local worker, load = loads[i], tonumber(loads[i + 1])
  local seen = tonumber(redis.call('ZSCORE', prefix .. 'seen', worker) or '0')
  local capacity = tonumber(redis.call('HGET', prefix .. 'capacity', worker) or '0')
  if seen >= now - stale and load < capacity then
    redis.call('ZINCRBY', prefix .. 'load', 1, worker)
    redis.call('SET', placed, worker, 'PX', remember)
    redis.call('RPUSH', prefix .. 'inbox:' .. worker, stream)
    redis.call('PEXPIRE', prefix .. 'inbox:' .. worker, stale * 4)
    redis.call('ZREM', prefix .. 'waiting', stream)
    return worker
  end
end
redis.call('ZADD', prefix .. 'waiting', 'NX', now, stream)
return false
"""

# A host's heartbeat: its load is what it holds and is adopting plus what still waits in its inbox. Once per
# `dead_after` ms, one heartbeat of the fleet (whichever comes first) also forgets the processes silent that long:
# they died without leaving (kill -9, out of memory, a lost node), and every placement walks the fleet's entries.
HEARTBEAT = """
local prefix, worker, held, capacity, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local dead_after = tonumber(ARGV[6])
local queued = redis.call('LLEN', prefix .. 'inbox:' .. worker)
redis.call('ZADD', prefix .. 'load', held + queued, worker)
redis.call('HSET', prefix .. 'capacity', worker, capacity)
redis.call('ZADD', prefix .. 'seen', now, worker)
if not redis.call('SET', prefix .. 'swept', worker, 'NX', 'PX', dead_after) then
  return {held + queued, 0}
end
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', prefix .. 'seen', '-inf', '(' .. (now - dead_after))) do
  redis.call('ZREM', prefix .. 'load', gone)
  redis.call('ZREM', prefix .. 'seen', gone)
  redis.call('HDEL', prefix .. 'capacity', gone)
end
return {held + queued, 1}
"""

# A host leaving the fleet (drain): no placement reaches it any more; what waited in its inbox is returned.
LEAVE = """
local prefix, worker = ARGV[1], ARGV[2]
redis.call('ZREM', prefix .. 'load', worker)
redis.call('ZREM', prefix .. 'seen', worker)
redis.call('HDEL', prefix .. 'capacity', worker)
local inbox = prefix .. 'inbox:' .. worker
local queued = redis.call('LRANGE', inbox, 0, -1)
redis.call('DEL', inbox)
for _, stream in ipairs(queued) do redis.call('DEL', prefix .. 'placed:' .. stream) end
return queued
"""


def _prefix():
    return key("rtms", "fleet", "")


def _now_ms():
    return int(time.time() * 1000)


def _stale_ms():
    return int(settings.RTMS_LEASE_TTL * 1000)


def _dead_after_ms():
    """A process silent this long is forgotten: its inbox has expired too (PLACE)."""
    return _stale_ms() * 4


def inbox_key(worker_id):
    return key("rtms", "fleet", "inbox", worker_id)


def place(stream_id, client=None):
    """Push the stream to the least loaded process with room; returns its worker id, or None when every
    process is full (the stream waits) or Redis is unreachable (the reconciler places it later)."""
    return place_many([stream_id], client).get(stream_id)


def place_many(stream_ids, client=None):
    """{stream_id: worker id or None} for every stream, in one pipelined round trip."""
    stream_ids = list(stream_ids)
    if not stream_ids:
        return {}
    client = client or redis_client()
    script = client.register_script(PLACE)
    pipe = client.pipeline(transaction=False)
    now, stale, prefix = _now_ms(), _stale_ms(), _prefix()
    for stream_id in stream_ids:
        script(keys=[], args=[prefix, stream_id, now, stale, stale], client=pipe)
    try:
        results = pipe.execute()
    except RedisError as exc:
        log.warning("streams not placed, the reconciler will retry", extra={"streams": len(stream_ids),
                                                                            "error": repr(exc)})
        return {}
    placed = {s: (w.decode() if isinstance(w, bytes) else w) or None for s, w in zip(stream_ids, results)}
    waiting = [s for s, w in placed.items() if w is None]
    if waiting:
        log.warning("streams waiting for capacity: every worker process is full",
                    extra={"waiting": len(waiting), "first": waiting[0]})
    return placed


def forget(stream_id, client=None):
    """The placed process could not take the stream (full after all, or leaving): it may be placed again."""
    (client or redis_client()).delete(key("rtms", "fleet", "placed", stream_id))


def heartbeat(worker_id, held, capacity, client):
    """Publish this process's load and capacity; returns the load counted (held + queued in its inbox) and whether
    this heartbeat was the fleet's sweep (it forgot the processes that died: the caller sweeps what else they left)."""
    load, swept = client.eval(HEARTBEAT, 0, _prefix(), worker_id, held, capacity, _now_ms(), _dead_after_ms())
    return int(load), bool(swept)


def leave(worker_id, client=None):
    """Take this process out of placement; returns the stream ids that waited in its inbox."""
    queued = (client or redis_client()).eval(LEAVE, 0, _prefix(), worker_id)
    return [s.decode() if isinstance(s, bytes) else s for s in queued]


def waiting_streams(client=None):
    """{stream_id: seconds waiting} of the streams no process had room for."""
    client = client or redis_client()
    now = _now_ms()
    return {stream.decode(): max(0.0, (now - since) / 1000)
            for stream, since in client.zrange(_prefix() + "waiting", 0, -1, withscores=True)}


def stop_waiting(stream_ids, client=None):
    """Streams that no longer want a holder (stopped) leave the waiting set."""
    stream_ids = list(stream_ids)
    if stream_ids:
        (client or redis_client()).zrem(_prefix() + "waiting", *stream_ids)


def waiting_count():
    """For the metric: how many streams wait for capacity (NaN when Redis is unreachable)."""
    try:
        return redis_client().zcard(_prefix() + "waiting")
    except RedisError:
        return float("nan")
