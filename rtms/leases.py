"""Stream leases in Redis, with fencing (docs/ARCHITECTURE.md, "Holding RTMS streams").

A lease is the key `<ns>:rtms:lease:<stream_id>` holding `<worker id>:<token>`, taken with SET NX PX ttl. Its
holder renews all its leases every ttl/3, in one script call that compares each value and sets a fresh expiry; a
holder whose renewal finds another value (or cannot reach Redis before its lease runs out) closes its sockets at
once, so two workers never hold one stream. When Redis lost the key altogether (a restart), the holder re-takes it
with SET NX: nobody else holds it, so holding on is safe and streams keep flowing. A release first marks its
holding as over (`<ns>:rtms:released:<value>`, for a ttl), and a renewal never takes back a lease so marked: the
renewal thread may have listed the stream just before the loop released it, and taking it back would keep the
next holder out for a whole ttl. The scripts name every key they touch, so Redis must be one server (or a primary
with replicas), not a Cluster spreading keys over shards.
"""

import secrets

from django.conf import settings

from rtms.redis_connection import key, redis_client

# Every lease of a holder in one script call: KEYS are the leases, ARGV their values in the same order, then the
# released-marker prefix and the ttl. For each: 1 renewed; 2 the key had vanished (Redis restarted) and was taken
# again; 0 someone else holds it; 3 it was released meanwhile (left alone).
RENEW_MANY = """
local released, ttl = ARGV[#ARGV - 1], ARGV[#ARGV]
local results = {}
for i, lease in ipairs(KEYS) do
  local current = redis.call('GET', lease)
  if current == ARGV[i] then
    redis.call('PEXPIRE', lease, ttl)
    results[i] = 1
  elseif current then
    results[i] = 0
  elseif redis.call('EXISTS', released .. ARGV[i]) == 1 then
    results[i] = 3
  else
    redis.call('SET', lease, ARGV[i], 'PX', ttl)
    results[i] = 2
  end
end
return results
"""
RENEW_BATCH = 1000  # leases per script call: Redis runs nothing else meanwhile (about a millisecond a thousand)

RENEWED, RETAKEN, TAKEN_BY_ANOTHER, RELEASED = 1, 2, 0, 3

# KEYS: the lease, its holding's released marker; ARGV: the value, the ttl. The marker first: a renewal running after
# this script finds it and does not take the lease back.
RELEASE = """
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lease_key(stream_id):
    return key("rtms", "lease", stream_id)


def released_key(value):
    return key("rtms", "released", value)


def ttl_ms():
    return int(settings.RTMS_LEASE_TTL * 1000)


def new_lease_value(worker_id):
    return f"{worker_id}:{secrets.token_hex(6)}"


def try_acquire(stream_id, value):
    """SET NX PX: True when this caller now holds the stream."""
    return bool(redis_client().set(lease_key(stream_id), value, nx=True, px=ttl_ms()))


def try_acquire_many(values):
    """SET NX PX for {stream_id: value, ...} in one pipelined round trip; [True when now held, ...] in order."""
    pipe = redis_client().pipeline(transaction=False)
    for stream_id, value in values.items():
        pipe.set(lease_key(stream_id), value, nx=True, px=ttl_ms())
    return [bool(taken) for taken in pipe.execute()] if values else []


def release(stream_id, value):
    """Drop the lease only if it is still ours; this holding is over, so no renewal takes it back."""
    return bool(redis_client().eval(RELEASE, 2, lease_key(stream_id), released_key(value), value, ttl_ms()))


def renew_many(leases, client):
    """Renew [(stream_id, value), ...]; results in order (see RENEW_MANY). One script call per RENEW_BATCH leases:
    a pipeline of one call per lease cost the renewal thread ~45 µs of Python per lease, 67 ms of every second
    at 1,500 streams, against 15 ms this way (docs/STREAMS.md, "How often the holder reads and stores")."""
    script = client.register_script(RENEW_MANY)
    prefix, released, ttl = lease_key(""), released_key(""), ttl_ms()
    results = []
    for start in range(0, len(leases), RENEW_BATCH):
        batch = leases[start:start + RENEW_BATCH]
        results.extend(script(keys=[prefix + stream_id for stream_id, _ in batch],
                              args=[value for _, value in batch] + [released, ttl], client=client))
    return [int(result) for result in results]


def holders(stream_ids):
    """{stream_id: lease value or None} in one round trip (the reconciler)."""
    stream_ids = list(stream_ids)
    if not stream_ids:
        return {}
    values = redis_client().mget([lease_key(s) for s in stream_ids])
    return {s: (v.decode() if v else None) for s, v in zip(stream_ids, values)}


class AsyncLeases:
    """The session host's side: release, the check before a move (and its control channel) from its event loop
    with an asyncio client."""

    def __init__(self, url):
        import redis.asyncio

        # Bounded and blocking: a thousand streams ending at once wait for a connection instead of failing.
        pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=32, timeout=5, socket_timeout=2,
                                                             socket_connect_timeout=2)
        self.redis = redis.asyncio.Redis(connection_pool=pool)
        self._release = self.redis.register_script(RELEASE)

    async def release(self, stream_id, value):
        return bool(await self._release(keys=[lease_key(stream_id), released_key(value)], args=[value, ttl_ms()]))

    async def holds(self, stream_id, value):
        """Whether the lease is still `value`'s: checked before the holder connects somewhere new."""
        current = await self.redis.get(lease_key(stream_id))
        return current is not None and current.decode() == value
