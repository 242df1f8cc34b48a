"""Any exception on the request path -> a ClassifyError whose message is safe to show a
client: Ray's own failures (a shed call, a dead or unavailable replica, a timeout) get their
status and a short message; anything else is INTERNAL, logged here, never echoed."""

from __future__ import annotations

import asyncio
import logging

from ray.exceptions import RayActorError
from ray.serve.exceptions import (
    BackPressureError,
    DeploymentUnavailableError,
    ReplicaUnavailableError,
)

from imgclf_serve.errors import ClassifyError, Overloaded, ReplicaUnavailable

logger = logging.getLogger("ray.serve")
INTERNAL_MESSAGE = "internal error; the server log has the details"


def as_classify_error(exc: BaseException, where: str) -> ClassifyError:
    """`exc` as a ClassifyError; `where` names the failing step in the server log."""
    if isinstance(exc, ClassifyError):
        return exc
    if isinstance(exc, BackPressureError):
        return Overloaded("the server is overloaded; retry with backoff")
    if isinstance(exc, (RayActorError, DeploymentUnavailableError, ReplicaUnavailableError)):
        return ReplicaUnavailable("a model replica is unavailable; retry")
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return ReplicaUnavailable("a model replica did not answer in time; retry")
    logger.error("%s failed", where, exc_info=exc)
    return ClassifyError(INTERNAL_MESSAGE)
