"""imgclf: the Python client for the imgclf image-classification server.

    from imgclf import ClassifierClient

    with ClassifierClient("127.0.0.1:9000") as client:
        result = client.classify("kitten.jpg", top_k=3)
        print(result.top.label, result.top.probability)

`AsyncClassifierClient` is the asyncio twin. Failures raise `imgclf.errors.ImgclfError`
subclasses; the generated imgclf.v1 messages live in `imgclf.v1`.
"""

from importlib.metadata import PackageNotFoundError, version

from imgclf.aio import AsyncClassifierClient
from imgclf.client import ClassifierClient
from imgclf.errors import (
    DeadlineExceeded,
    ImgclfError,
    InternalError,
    InvalidArgument,
    InvalidImage,
    ModelNotFound,
    NotFound,
    Overloaded,
    Unavailable,
)
from imgclf.images import ImageInput
from imgclf.options import TLS, USE_CLIENT_DEFAULT, Keepalive, RetryPolicy
from imgclf.results import (
    Backend,
    BatchItem,
    Classification,
    DeviceKind,
    HealthStatus,
    ItemError,
    Limits,
    ModelInfo,
    Prediction,
    ServedBy,
    ServerModels,
)

try:
    __version__ = version("imgclf")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "TLS",
    "USE_CLIENT_DEFAULT",
    "AsyncClassifierClient",
    "Backend",
    "BatchItem",
    "Classification",
    "ClassifierClient",
    "DeadlineExceeded",
    "DeviceKind",
    "HealthStatus",
    "ImageInput",
    "ImgclfError",
    "InternalError",
    "InvalidArgument",
    "InvalidImage",
    "ItemError",
    "Keepalive",
    "Limits",
    "ModelInfo",
    "ModelNotFound",
    "NotFound",
    "Overloaded",
    "Prediction",
    "RetryPolicy",
    "ServedBy",
    "ServerModels",
    "Unavailable",
    "__version__",
]
