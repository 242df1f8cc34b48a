"""One exception tree for every failed call, keyed by gRPC status code and imgclf's reason.

    ImgclfError
    ├── InvalidArgument        INVALID_ARGUMENT
    │   └── InvalidImage       ... with reason INVALID_IMAGE (undecodable, too big, a bomb)
    ├── NotFound               NOT_FOUND
    │   └── ModelNotFound      ... with reason MODEL_NOT_FOUND
    ├── Overloaded             RESOURCE_EXHAUSTED (the server sheds load; retry later)
    ├── DeadlineExceeded       DEADLINE_EXCEEDED
    ├── Unavailable            UNAVAILABLE (server down, unreachable, or a replica restarting)
    └── InternalError          INTERNAL, UNKNOWN, DATA_LOSS

Any other status code raises ImgclfError itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import grpc

REASON_METADATA_KEY = "imgclf-error-reason"
REQUEST_ID_METADATA_KEY = "request_id"
_REASON_PREFIX = "ERROR_REASON_"


class ImgclfError(Exception):
    """A call to the imgclf server failed.

    Attributes:
        code: the gRPC status code.
        message: the server's (or gRPC's) explanation, safe to show a user.
        reason: imgclf's finer reason, e.g. "INVALID_IMAGE"; "" when the server gave none.
        request_id: the id the call was sent with; the server's logs name it too.
    """

    default_code = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        reason: str = "",
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.reason = reason
        self.request_id = request_id

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        return f"{text} (request id {self.request_id})" if self.request_id else text


class InvalidArgument(ImgclfError):
    """The request was refused as it stands: a field out of range or a bad image."""

    default_code = grpc.StatusCode.INVALID_ARGUMENT


class InvalidImage(InvalidArgument):
    """The bytes are not an image the server accepts: empty, undecodable, or over a limit."""


class NotFound(ImgclfError):
    """Something the call named does not exist on the server."""

    default_code = grpc.StatusCode.NOT_FOUND


class ModelNotFound(NotFound):
    """The requested model is not deployed; `ClassifierClient.models()` lists those that are."""


class Overloaded(ImgclfError):
    """The server shed the call (RESOURCE_EXHAUSTED); retry later with backoff."""

    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceeded(ImgclfError):
    """The call's deadline passed before the server answered."""

    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unavailable(ImgclfError):
    """The server could not be reached, or a model replica was restarting; retry."""

    default_code = grpc.StatusCode.UNAVAILABLE


class InternalError(ImgclfError):
    """The server failed unexpectedly; the server log has the details under the request id."""

    default_code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[ImgclfError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Overloaded,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.DATA_LOSS: InternalError,
}
_BY_CODE_AND_REASON: dict[tuple[grpc.StatusCode, str], type[ImgclfError]] = {
    (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_IMAGE"): InvalidImage,
    (grpc.StatusCode.NOT_FOUND, "MODEL_NOT_FOUND"): ModelNotFound,
}


def error_for(
    code: grpc.StatusCode, message: str, reason: str = "", request_id: str | None = None
) -> ImgclfError:
    """The exception for a status code and imgclf reason (the prefix-less ErrorReason name)."""
    cls = _BY_CODE_AND_REASON.get((code, reason)) or _BY_CODE.get(code, ImgclfError)
    return cls(message, code=code, reason=reason, request_id=request_id)


def reason_name(wire_name: str) -> str:
    """ "ERROR_REASON_INVALID_IMAGE" -> "INVALID_IMAGE"; "" for unspecified or unknown."""
    name = wire_name.removeprefix(_REASON_PREFIX)
    return "" if name in ("", "UNSPECIFIED") or name == wire_name else name


class _FailedCall(Protocol):
    def code(self) -> grpc.StatusCode: ...
    def details(self) -> str | None: ...
    def trailing_metadata(self) -> Iterable[tuple[str, str | bytes]] | None: ...


def from_grpc_error(exc: grpc.RpcError, request_id: str | None) -> ImgclfError:
    """Map a failed sync or asyncio call to the exception tree (the caller raises it `from`)."""
    call: _FailedCall = exc  # type: ignore[assignment]  # every RpcError raised by a call is one
    code = call.code()
    trailing = {key: value for key, value in call.trailing_metadata() or ()}
    reason = trailing.get(REASON_METADATA_KEY, "")
    server_request_id = trailing.get(REQUEST_ID_METADATA_KEY)
    return error_for(
        code,
        call.details() or code.name.lower().replace("_", " "),
        reason_name(reason if isinstance(reason, str) else ""),
        server_request_id if isinstance(server_request_id, str) else request_id,
    )
