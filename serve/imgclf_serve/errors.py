"""Errors that carry their wire status. The gRPC edge (ingress.py) maps them once."""

from __future__ import annotations

import enum


class Code(enum.IntEnum):
    """The gRPC status codes the server returns; values equal google.rpc.Code."""

    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    RESOURCE_EXHAUSTED = 8
    INTERNAL = 13
    UNAVAILABLE = 14


class ClassifyError(Exception):
    """A failure a client can act on: a status code and a message without internals."""

    code: Code = Code.INTERNAL

    def __init__(self, message: str, code: Code | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidImage(ClassifyError):
    """The bytes are not an image the server accepts (undecodable, too big, a bomb)."""

    code = Code.INVALID_ARGUMENT


class InvalidArgument(ClassifyError):
    """A request field is out of range (top_k, batch size)."""

    code = Code.INVALID_ARGUMENT


class ModelNotFound(ClassifyError):
    """The request names a model that is not deployed."""

    code = Code.NOT_FOUND
