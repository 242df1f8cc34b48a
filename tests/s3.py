"""A local S3-compatible store for tests: moto's server, in the test process, on 127.0.0.1
(never the internet), and the environment that points AWS clients at it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from imgclf_serve.models.files import CACHE_ENV
from imgclf_tools.ports import free_port


def s3_env(endpoint: str, cache: Path) -> dict[str, str]:
    """What a process needs to reach the store at `endpoint` (test credentials), with models
    fetched into `cache`."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        CACHE_ENV: str(cache),
    }


@contextlib.contextmanager
def local_s3(cache: Path) -> Iterator[dict[str, str]]:
    """An empty store while the block runs; yields s3_env for it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield s3_env(f"http://127.0.0.1:{port}", cache)
    finally:
        server.stop()


def s3_client(env: dict[str, str]) -> Any:
    """A boto3 S3 client for the store `env` names, whatever this process's environment."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
