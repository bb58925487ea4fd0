"""Where stored media lives, reachable from every node (docs/ARCHITECTURE.md, "Several worker machines").

Two backends behind one interface, chosen by MEDIA_STORAGE:

- `local` (the default, bin/run): files under MEDIA_ROOT, one machine;
- `s3`: objects in MEDIA_S3_BUCKET through the S3 API (boto3), at MEDIA_S3_ENDPOINT_URL when set (MinIO, moto,
  another provider) or AWS; credentials from the environment as boto3 reads them (AWS_ACCESS_KEY_ID, ...).

Keys are `rtms/<stream id>/...`, built only by `stream_key` from a valid stream id (rtms/identifiers.py), the
rest from fixed names and integers; the local backend also resolves each key under MEDIA_ROOT through
rtms.media.stream_dir (docs/SECURITY.md "Identifiers checked at the edge"). Workers write into a local spool and
upload whole segments (rtms/sinks.py); deleting a stream's prefix works from any node.
"""

import functools
import logging
import os
import shutil
from pathlib import Path

from django.conf import settings

from rtms import media
from rtms.identifiers import InvalidIdentifier, validate

log = logging.getLogger("rtms.storage")


def stream_prefix(stream_id):
    """`rtms/<stream id>/` for a valid stream id, else OutsideMediaRoot."""
    try:
        validate("rtms_stream_id", stream_id)
    except InvalidIdentifier as exc:
        raise media.OutsideMediaRoot(str(exc)) from None
    return f"rtms/{stream_id}/"


def stream_key(stream_id, *names):
    return stream_prefix(stream_id) + "/".join(names)


def _stream_id_of(key):
    """The stream id and the names under it of a key that `stream_key` could have built, else OutsideMediaRoot."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != "rtms" or any(part in ("", ".", "..") for part in parts[2:]):
        raise media.OutsideMediaRoot(f"not a stream's media key: {key[:100]!r}")
    stream_prefix(parts[1])
    return parts[1], parts[2:]


class StorageError(Exception):
    """Storage did not do what it was asked (a file it could not remove, an object S3 refused to delete): what
    was asked is not done, and asking again is safe."""


def _raise_unless_gone(function, path, exc_info):
    """rmtree's error handler: a file already gone (another deletion got there first) is what was wanted."""
    if not isinstance(exc_info[1], FileNotFoundError):
        raise StorageError(f"could not delete {path}: {exc_info[1].strerror or exc_info[1]}") from exc_info[1]


class LocalStorage:
    name = "local"

    def __init__(self, root):
        self.root = Path(root)

    def _path(self, key):
        stream_id, rest = _stream_id_of(key)
        return media.stream_dir(stream_id, root=self.root).joinpath(*rest)

    def put_file(self, key, local_path):
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        partial.unlink(missing_ok=True)  # left by a copy that was interrupted
        try:
            # A closed segment is never written again: on the spool's own filesystem a hard link stores it
            # without copying a byte (a thousand streams' segments copied was a quarter of a core).
            os.link(local_path, partial, follow_symlinks=True)  # what copyfile would read
        except OSError:  # another filesystem, or one without hard links
            shutil.copyfile(local_path, partial)
        partial.replace(path)  # readers never see half a segment

    def put_bytes(self, key, data):
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(data)
        partial.replace(path)

    def open(self, key):
        """A binary file object of the stored object (FileNotFoundError when absent)."""
        return open(self._path(key), "rb")  # the caller closes it (FileResponse does)

    def keys(self, stream_id):
        directory = media.stream_dir(stream_id, root=self.root)
        if not directory.exists():
            return []
        return sorted(f"rtms/{stream_id}/{p.relative_to(directory).as_posix()}" for p in directory.rglob("*")
                      if p.is_file() and not p.name.endswith(".part"))

    def delete_stream(self, stream_id):
        """The stream's directory and all in it; StorageError when any of it stays."""
        directory = media.stream_dir(stream_id, root=self.root)
        if directory.exists():
            shutil.rmtree(directory, onerror=_raise_unless_gone)


class S3Storage:
    name = "s3"

    def __init__(self, bucket, endpoint_url=None, region=None):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region,
                                   config=Config(retries={"max_attempts": 5, "mode": "standard"},
                                                 connect_timeout=5, read_timeout=30))

    def put_file(self, key, local_path):
        _stream_id_of(key)
        self.client.upload_file(str(local_path), self.bucket, key)

    def put_bytes(self, key, data):
        _stream_id_of(key)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def open(self, key):
        from botocore.exceptions import ClientError

        _stream_id_of(key)
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from None
            raise

    def keys(self, stream_id):
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                          Prefix=stream_prefix(stream_id)):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(found)

    def delete_stream(self, stream_id):
        """Every object under the stream's prefix, a thousand per request (the API's limit); StorageError when S3
        refuses any of them: a batch delete answers 200 and lists the keys it did not delete (Quiet mode lists
        only those), and S3 unreachable or refusing the request is one too."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            keys = self.keys(stream_id)
            refused = []
            for start in range(0, len(keys), 1000):
                answer = self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k} for k in keys[start:start + 1000]], "Quiet": True})
                refused.extend(answer.get("Errors", []))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"S3 did not delete the stream's objects: {exc}") from exc
        if refused:
            first = refused[0]
            raise StorageError(f"S3 did not delete {len(refused)} of the stream's {len(keys)} objects "
                               f"({first.get('Key')}: {first.get('Code')} {first.get('Message')})")


@functools.cache
def _storage(kind, root, bucket, endpoint_url, region):
    if kind == "s3":
        return S3Storage(bucket, endpoint_url, region)
    return LocalStorage(root)


def storage():
    """The configured backend (one per process and configuration)."""
    return _storage(settings.MEDIA_STORAGE, str(settings.MEDIA_ROOT), settings.MEDIA_S3_BUCKET,
                    settings.MEDIA_S3_ENDPOINT_URL, settings.MEDIA_S3_REGION)


def open_media(media_file):
    """A segment of the media index (rtms.models.MediaFile) from storage, for the console: (binary file object,
    file name); a frame segment gives its index (one JSON line per frame). FileNotFoundError while the segment
    is still in a worker's spool, or after it was deleted."""
    if not media_file.stored:
        raise FileNotFoundError(media_file.path)
    key = media_file.path if media_file.path.endswith(".wav") else f"{media_file.path}/index.jsonl"
    return storage().open(key), key.rsplit("/", 1)[-1]
