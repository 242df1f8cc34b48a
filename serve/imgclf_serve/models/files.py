"""Where a model's files are: a local path, or `s3://bucket/key`, fetched when a replica
starts (and, for labels, when the application is built) into a local cache. S3 needs boto3
(`pip install 'imgclf-serve[s3]'`) and the usual AWS settings of the process: credentials
(on EKS, the pods' IAM role), the region, and `AWS_ENDPOINT_URL` for an S3-compatible store."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

S3 = "s3://"
CACHE_ENV = "IMGCLF_MODEL_CACHE"
# Seconds to connect to S3 and to wait for its answers, and attempts: an unreachable store
# fails the replica in seconds with a message, instead of retrying for minutes.
S3_TIMEOUT_S = 10
S3_ATTEMPTS = 3


class ModelSourceError(ValueError):
    """A model's source, labels or outputs are unusable."""


def is_s3(location: str) -> bool:
    return location.startswith(S3)


def split_s3(location: str) -> tuple[str, str]:
    """("bucket", "key") of s3://bucket/key; ValueError if either is missing."""
    bucket, _, key = location[len(S3) :].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise ValueError(f"{location!r} is not s3://bucket/key")
    return bucket, key


def local_copy(model: str, what: str, location: str) -> Path:
    """The file at `location` on this machine: the path itself, or a fresh download of an
    S3 object (a new version under the same key is fetched again)."""
    if not is_s3(location):
        path = Path(location)
        if not path.is_file():
            raise ModelSourceError(f"model {model}: {what} file {location} does not exist")
        return path
    bucket, key = split_s3(location)
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise ModelSourceError(
            f"model {model}: {what} {location} is on S3, which needs boto3: "
            "pip install 'imgclf-serve[s3]'"
        ) from None
    cache = Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "imgclf-models")
    target = cache / hashlib.sha256(location.encode()).hexdigest()[:16] / Path(key).name
    target.parent.mkdir(parents=True, exist_ok=True)
    config = Config(
        connect_timeout=S3_TIMEOUT_S,
        read_timeout=S3_TIMEOUT_S,
        retries={"max_attempts": S3_ATTEMPTS, "mode": "standard"},
    )
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    try:
        boto3.client("s3", config=config).download_file(bucket, key, str(partial))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        reason = {"404": "no such object", "NoSuchKey": "no such object"}.get(
            str(error.get("Code")), f"{error.get('Code')}: {error.get('Message', '')}".strip()
        )
        raise ModelSourceError(f"model {model}: cannot fetch {what} {location}: {reason}") from None
    except BotoCoreError as exc:  # no credentials, no endpoint, timeouts
        raise ModelSourceError(f"model {model}: cannot fetch {what} {location}: {exc}") from None
    os.replace(partial, target)
    return target
