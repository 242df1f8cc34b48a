"""imgclf_serve: the imgclf Ray Serve application (ingress, per-core model replicas)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("imgclf-serve")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
