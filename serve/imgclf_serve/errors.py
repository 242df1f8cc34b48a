"""Errors that carry their wire status. The gRPC edge (ingress.py) maps them once."""

from __future__ import annotations

import enum

# Caller's text longer than this is cut in error messages (a 100 KB name is not echoed).
MAX_QUOTED = 64


class Code(enum.IntEnum):
    """The gRPC status codes the server returns; values equal google.rpc.Code."""

    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    RESOURCE_EXHAUSTED = 8
    INTERNAL = 13
    UNAVAILABLE = 14


class Reason(enum.Enum):
    """Why a call or an image failed, finer than its code; names equal imgclf.v1.ErrorReason's
    without the ERROR_REASON_ prefix."""

    INVALID_IMAGE = "INVALID_IMAGE"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    MODEL_NOT_FOUND = "MODEL_NOT_FOUND"
    OVERLOADED = "OVERLOADED"
    REPLICA_UNAVAILABLE = "REPLICA_UNAVAILABLE"
    INTERNAL = "INTERNAL"


class ClassifyError(Exception):
    """A failure a client can act on: a status code, a reason and a message without internals."""

    code: Code = Code.INTERNAL
    reason: Reason = Reason.INTERNAL

    def __init__(self, message: str, code: Code | None = None, reason: Reason | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if reason is not None:
            self.reason = reason


class InvalidImage(ClassifyError):
    """The bytes are not an image the server accepts (undecodable, too big, a bomb)."""

    code = Code.INVALID_ARGUMENT
    reason = Reason.INVALID_IMAGE


class InvalidArgument(ClassifyError):
    """A request field is out of range (top_k, batch size)."""

    code = Code.INVALID_ARGUMENT
    reason = Reason.INVALID_ARGUMENT


class ModelNotFound(ClassifyError):
    """The request names a model that is not deployed."""

    code = Code.NOT_FOUND
    reason = Reason.MODEL_NOT_FOUND


class Overloaded(ClassifyError):
    """The server sheds this call; the client should retry with backoff."""

    code = Code.RESOURCE_EXHAUSTED
    reason = Reason.OVERLOADED


class ReplicaUnavailable(ClassifyError):
    """A model replica is restarting or did not answer; the client should retry."""

    code = Code.UNAVAILABLE
    reason = Reason.REPLICA_UNAVAILABLE


def quoted(text: str) -> str:
    """A caller's text, quoted and cut short for an error message."""
    if len(text) <= MAX_QUOTED:
        return repr(text)
    return f"{text[:MAX_QUOTED]!r}... ({len(text)} characters)"
