"""A real S3-API server for the storage tests: moto's standalone server (PyPI `moto[server]`) on a free
127.0.0.1 port, one per test session, and a bucket per test."""

import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.processes import free_port, wait_for

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("s3") / "moto.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{url}/moto-api/", timeout=1).ok, 30, "moto's S3 server to answer")
        yield url
    finally:
        server.terminate()
        server.wait(10)
        log.close()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch):
    """A fresh bucket; the AWS credentials boto3 reads from the environment point at the local server."""
    import boto3

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    bucket = f"media-{secrets.token_hex(4)}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    return bucket
