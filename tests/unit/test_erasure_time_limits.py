"""A revoked stream's erasure (rtms.delete_stream_media) is not cut short by its own time limit while S3 does not
answer: it was (20 s against S3's 25 s and more of connect timeouts), failed for good, and the revoked stream's
media stayed until retention."""

from botocore.retries.standard import ExponentialBackoff
from celery.exceptions import SoftTimeLimitExceeded

from rtms.storage import S3Storage, StorageError
from rtms.tasks import delete_stream_media


def test_the_erasure_outlasts_an_s3_call_that_gets_no_answer_and_is_tried_again_past_its_limit():
    config = S3Storage("media", region="us-east-1").client.meta.config
    tries = config.retries["total_max_attempts"]
    backoff = (tries - 1) * ExponentialBackoff._MAX_BACKOFF
    slowest_call = tries * (config.connect_timeout + config.read_timeout) + backoff
    assert delete_stream_media.soft_time_limit > slowest_call
    # The hard limit kills the pool process, and every stream it holds: only past a soft limit that was not heeded.
    assert delete_stream_media.time_limit >= delete_stream_media.soft_time_limit + 120
    assert {StorageError, SoftTimeLimitExceeded} <= set(delete_stream_media.autoretry_for)
    assert delete_stream_media.retry_backoff and delete_stream_media.max_retries is None
