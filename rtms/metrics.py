"""Prometheus metrics (prometheus-client, the default registry of each process).

Web: scraped at /metrics (rtms.views.metrics): the default registry, what web processes count (webhooks, Zoom's
concurrency events, refusals) and the fleet's streams waiting for capacity, read from Redis. Worker pool processes:
HOST, what only a session host counts (streams held, frames, leases, media not stored, ...), served on
RTMS_METRICS_ADDR from RTMS_METRICS_PORT (the first free port from there, one per pool process) by the session
host; a web process never exports these, which would read 0 there for good (docs/DEPLOY.md, "Metrics").

Per-frame figures are not counted per frame: the host's collector reads each held stream's plain-int counters
(rtms.client StreamCounters) at scrape time, and the send→store lag is recorded per flushed batch.
"""

import bisect
import threading

from prometheus_client import GC_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

webhook_deliveries = Counter("zoom_webhook_deliveries", "Webhook deliveries by outcome", ["outcome"])
webhook_handling = Histogram("zoom_webhook_handling_seconds", "From a webhook reaching our endpoint to our answer; "
                             "Zoom retries a delivery answered after 3 s",
                             buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10))
rtms_concurrency_events = Counter("zoom_rtms_concurrency_events", "Zoom's rtms.concurrency_near_limit and "
                                  "rtms.concurrency_limited events received (zoomapp/webhooks/concurrency.py)",
                                  ["event"])
rtms_concurrency_number = Gauge("zoom_rtms_concurrency_number", "concurrency_number of the last rtms.concurrency_* "
                                "event, by app and event", ["client_id", "event"])
streams_waiting = Gauge("rtms_streams_waiting_for_capacity", "Streams no worker process had room for "
                        "(RTMS_STREAMS_PER_PROCESS everywhere), read from Redis at scrape time")
streams_refused = Counter("rtms_streams_refused", "Streams we ended ourselves (stream limits, never connected, "
                          "a server URL outside the allow list), by reason", ["reason"])

# A session host's own figures: each worker pool process's endpoint only.
HOST = CollectorRegistry()
HOST.register(PROCESS_COLLECTOR)
HOST.register(GC_COLLECTOR)
HOST.register(streams_refused)  # web processes refuse streams (limits), and so do session hosts (never connected)
streams_held = Gauge("rtms_streams_held", "RTMS streams held by this worker process", registry=HOST)
placement_load = Gauge("rtms_placement_load", "Streams held, adopting and queued for this worker process, as "
                       "published for placement (rtms/placement.py)", registry=HOST)
reconnects = Counter("rtms_reconnects", "RTMS stream reconnects (after a socket drop or keep-alive silence)",
                     registry=HOST)
lease_renewals = Counter("rtms_lease_renewals", "Successful stream lease renewals", registry=HOST)
lease_losses = Counter("rtms_lease_losses", "Stream leases lost (sockets closed at once: fencing)", registry=HOST)
media_write_failures = Counter("rtms_media_write_failures", "A stream's media of one tick not stored (disk full, "
                               "I/O error): appends and segment closes that failed", registry=HOST)
sink_write_failures = Counter("rtms_sink_write_failures", "Database batches and segment uploads that failed and "
                              "were kept for retry", ["what"], registry=HOST)

MEDIA = ("audio", "video", "deskshare", "transcript", "chat")


class LagRecorder:
    """Send→store lag histogram filled per batch: a batch of `count` frames with timestamps spread evenly
    from `first_ms` to `last_ms`, stored at `now_ms`, adds `count` observations without a per-frame call.

    Lags under FINE_MS are counted per millisecond (the percentiles and the exported buckets up to there are read
    from these), longer ones in the exported buckets directly: the file thread records a batch per stream per
    tick, so a record is a few list increments."""

    BOUNDS_MS = (5, 10, 25, 50, 100, 150, 200, 250, 350, 500, 750, 1000, 2000, 5000, 10000, 30000, 60000)
    FINE_MS = 2000

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self.fine = [0] * self.FINE_MS  # lag in [ms, ms + 1) -> observations
            self.slow = [0] * (len(self.BOUNDS_MS) + 1)  # lags of FINE_MS and more, by exported bucket
            self.count = 0
            self.sum_ms = 0.0

    def record(self, now_ms, first_ms, last_ms, count):
        """The batch's oldest, middle and newest frames stand for a third of it each: O(1) per batch, and when
        all three are under FINE_MS (nearly always) three list increments with no call (the file thread records
        a batch per stream per tick: docs/STREAMS.md)."""
        if count <= 0:
            return
        third = count // 3
        rest = count - 2 * third
        oldest, newest = now_ms - first_ms, now_ms - last_ms
        middle = (oldest + newest) / 2
        with self._lock:
            self.count += count
            if 0 <= newest <= oldest < self.FINE_MS:
                fine = self.fine
                fine[int(oldest)] += rest
                fine[int(middle)] += third
                fine[int(newest)] += third
                self.sum_ms += oldest * rest + (middle + newest) * third
                return
            self._add(oldest, rest)
            if third:
                self._add(middle, third)
                self._add(newest, third)

    def _add(self, lag, weight):
        if lag < 0:
            lag = 0
        if lag < self.FINE_MS:
            self.fine[int(lag)] += weight
        else:
            self.slow[bisect.bisect_left(self.BOUNDS_MS, lag)] += weight
        self.sum_ms += lag * weight

    def buckets(self):
        """Observations per exported bucket (each bound's own, not cumulative; the last: above every bound)."""
        with self._lock:
            counts = list(self.slow)
            for ms, n in enumerate(self.fine):
                if n:
                    counts[bisect.bisect_left(self.BOUNDS_MS, ms)] += n
            return counts

    def percentile(self, q):
        """Lag in ms below which a fraction q of the frames were stored (FINE_MS means 'at least FINE_MS')."""
        with self._lock:
            target = q * self.count
            running = 0
            for ms, n in enumerate(self.fine):
                running += n
                if running >= target and n:
                    return ms
            return self.FINE_MS if self.count else 0


store_lag = LagRecorder()


class HostCollector:
    """Frames and bytes by media type over every stream this process holds or held."""

    def __init__(self, counters_source):
        self._source = counters_source  # () -> iterable of dicts: StreamCounters.as_dict() plus retired totals

    def collect(self):
        frames = CounterMetricFamily("rtms_frames", "RTMS media frames received", labels=["media"])
        volume = CounterMetricFamily("rtms_bytes", "RTMS media bytes received", labels=["media"])
        totals = dict.fromkeys(MEDIA, 0), dict.fromkeys(MEDIA, 0)
        for counters in self._source():
            for media in MEDIA:
                totals[0][media] += counters.get(f"{media}_frames", 0)
                totals[1][media] += counters.get(f"{media}_bytes", 0)
        for media in MEDIA:
            frames.add_metric([media], totals[0][media])
            volume.add_metric([media], totals[1][media])
        yield frames
        yield volume
        lag = HistogramMetricFamily("rtms_store_lag_seconds", "Lag from Zoom's send timestamp to storage")
        running = 0
        cumulative = []
        for bound, n in zip(LagRecorder.BOUNDS_MS, store_lag.buckets()):
            running += n
            cumulative.append((str(bound / 1000), running))
        cumulative.append(("+Inf", store_lag.count))
        lag.add_metric([], cumulative, sum_value=store_lag.sum_ms / 1000)
        yield lag


def register_host_collector(counters_source):
    HOST.register(HostCollector(counters_source))


def _waiting_for_capacity():
    from rtms.placement import waiting_count  # placement reads settings: imported once Django is set up

    return waiting_count()


streams_waiting.set_function(_waiting_for_capacity)
