"""Connection options: TLS, retries, keepalive, timeouts, and the gRPC channel built from them."""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import grpc

SERVICE_NAME = "imgclf.v1.ClassifierService"
DEFAULT_TARGET = "127.0.0.1:9000"
TARGET_ENV = "IMGCLF_TARGET"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_MAX_CHANNEL_ARG = 2**31 - 1

PemSource = bytes | str | os.PathLike[str]
"""PEM data as bytes, or the path of a PEM file."""


class _UseClientDefault(enum.Enum):
    USE_CLIENT_DEFAULT = enum.auto()

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


USE_CLIENT_DEFAULT: Final = _UseClientDefault.USE_CLIENT_DEFAULT
"""Per-call `timeout` sentinel: use the client's default (distinct from None, no deadline)."""

Timeout = float | None | _UseClientDefault


@dataclass(frozen=True)
class RetryPolicy:
    """Retries done by gRPC itself (service config), with exponential backoff and jitter.

    Every imgclf call is idempotent, so retrying is safe. gRPC caps attempts at 5.

    Retries are throttled per channel (gRPC's `retryThrottling`): each failed attempt takes a
    token, each success gives back `throttle_token_ratio`; once fewer than half of
    `throttle_max_tokens` are left, gRPC stops retrying until successes refill them. So a
    server that fails most calls (overloaded, or down) gets each call about once, not
    `max_attempts` times.
    """

    max_attempts: int = 4
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    backoff_multiplier: float = 2.0
    retryable_codes: tuple[grpc.StatusCode, ...] = (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    throttle_max_tokens: int = 10
    throttle_token_ratio: float = 0.1

    def __post_init__(self) -> None:
        if not 2 <= self.max_attempts <= 5:
            raise ValueError(f"max_attempts must be in [2, 5]; got {self.max_attempts}")
        if self.initial_backoff_s <= 0 or self.max_backoff_s <= 0:
            raise ValueError("backoffs must be positive")
        if self.backoff_multiplier <= 0:
            raise ValueError("backoff_multiplier must be positive")
        if not self.retryable_codes:
            raise ValueError("retryable_codes is empty; pass retry=None to turn retries off")
        if not 0 < self.throttle_max_tokens <= 1000 or not 0 < self.throttle_token_ratio <= 1:
            raise ValueError(
                "throttle_max_tokens must be in (0, 1000] and throttle_token_ratio in (0, 1]"
            )

    def throttling(self) -> dict[str, int | float]:
        return {"maxTokens": self.throttle_max_tokens, "tokenRatio": self.throttle_token_ratio}

    def as_service_config(self) -> dict[str, Any]:
        return {
            "maxAttempts": self.max_attempts,
            "initialBackoff": f"{self.initial_backoff_s}s",
            "maxBackoff": f"{self.max_backoff_s}s",
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": [code.name for code in self.retryable_codes],
        }


@dataclass(frozen=True)
class Keepalive:
    """HTTP/2 keepalive pings, to notice dead connections behind load balancers.

    The server must allow pings this often; Ray Serve's proxy uses gRPC's server defaults,
    which refuse pings more often than every 5 minutes on an idle connection.
    """

    time_s: float = 300.0
    timeout_s: float = 20.0
    permit_without_calls: bool = False


@dataclass(frozen=True)
class TLS:
    """TLS to the server (for example through an NLB or ingress that terminates TLS).

    With no `root_certificates`, gRPC's bundled roots are used. `certificate_chain` and
    `private_key` together give mutual TLS. `server_name` overrides the name checked against
    the server certificate (for tests or IP targets).
    """

    root_certificates: PemSource | None = None
    certificate_chain: PemSource | None = None
    private_key: PemSource | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError("mutual TLS needs both certificate_chain and private_key")

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=_pem(self.root_certificates),
            private_key=_pem(self.private_key),
            certificate_chain=_pem(self.certificate_chain),
        )


@dataclass(frozen=True)
class ChannelSettings:
    """Everything the channel is built from; the sync and asyncio clients share it."""

    target: str
    tls: TLS | None
    retry: RetryPolicy | None
    keepalive: Keepalive | None
    max_message_bytes: int
    extra_options: Sequence[tuple[str, Any]] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.target:
            raise ValueError("target is empty; pass host:port, e.g. 127.0.0.1:9000")
        if self.max_message_bytes <= 0:
            raise ValueError(f"max_message_bytes must be positive; got {self.max_message_bytes}")

    def options(self) -> list[tuple[str, Any]]:
        size = min(self.max_message_bytes, _MAX_CHANNEL_ARG)
        options: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", size),
            ("grpc.max_receive_message_length", size),
            ("grpc.service_config", json.dumps(self.service_config())),
            ("grpc.enable_retries", int(self.retry is not None)),
            # gRPC retries only what it buffered: without this a call over 256 KiB (any real
            # ClassifyBatch) would silently never be retried.
            ("grpc.per_rpc_retry_buffer_size", size),
            ("grpc.retry_buffer_size", min(size * 16, _MAX_CHANNEL_ARG)),
        ]
        if self.keepalive is not None:
            options += [
                ("grpc.keepalive_time_ms", int(self.keepalive.time_s * 1000)),
                ("grpc.keepalive_timeout_ms", int(self.keepalive.timeout_s * 1000)),
                ("grpc.keepalive_permit_without_calls", int(self.keepalive.permit_without_calls)),
                ("grpc.http2.max_pings_without_data", 0),
            ]
        if self.tls is not None and self.tls.server_name:
            options.append(("grpc.ssl_target_name_override", self.tls.server_name))
        return options + list(self.extra_options)

    def service_config(self) -> dict[str, Any]:
        # round_robin: a DNS name with several addresses (a headless Service) spreads calls
        # over every pod instead of pinning one connection to one pod.
        config: dict[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}]}
        if self.retry is not None:
            config["methodConfig"] = [
                {"name": [{"service": SERVICE_NAME}], "retryPolicy": self.retry.as_service_config()}
            ]
            config["retryThrottling"] = self.retry.throttling()
        return config

    def sync_channel(self) -> grpc.Channel:
        if self.tls is None:
            return grpc.insecure_channel(self.target, options=self.options())
        return grpc.secure_channel(self.target, self.tls.credentials(), options=self.options())

    def aio_channel(self) -> grpc.aio.Channel:
        if self.tls is None:
            return grpc.aio.insecure_channel(self.target, options=self.options())
        return grpc.aio.secure_channel(self.target, self.tls.credentials(), options=self.options())


def default_target(target: str | None) -> str:
    """The target given, else $IMGCLF_TARGET, else 127.0.0.1:9000."""
    return target or os.environ.get(TARGET_ENV) or DEFAULT_TARGET


def as_tls(tls: TLS | bool | None) -> TLS | None:
    """`tls=True` means TLS with gRPC's bundled roots."""
    if tls is True:
        return TLS()
    return tls or None


def resolve_timeout(timeout: Timeout, default: float | None) -> float | None:
    return default if isinstance(timeout, _UseClientDefault) else timeout


def check_metadata(metadata: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    for key, value in metadata:
        if not key or key != key.lower() or not key.isascii():
            raise ValueError(f"metadata key {key!r} must be lowercase ASCII")
        if key.endswith("-bin") or not isinstance(value, str):
            raise ValueError(f"metadata {key!r} must have a text value")
    return tuple(metadata)


def _pem(source: PemSource | None) -> bytes | None:
    if source is None or isinstance(source, bytes):
        return source
    return Path(source).read_bytes()
