"""Free ports on this host for local clusters and benchmark servers (127.0.0.1 only)."""

from __future__ import annotations

import secrets
import socket

# Linux hands out ephemeral ports (outgoing connections, port 0) from 32768-60999 and Ray its
# workers' ports from 10002-19999: a port picked there can be taken before its server binds
# it (seen: HAProxy's stats port). Single ports come from above that range, blocks below it.
SINGLE_PORTS = range(61000, 65536)


# Ports this process handed out: a port nobody has bound yet is still free, so without this
# two picks for one cluster could return the same port.
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free now on every address, outside the ranges others pick from at random, and
    not handed out before by this process."""
    for _ in range(500):
        port = SINGLE_PORTS.start + secrets.randbelow(len(SINGLE_PORTS))
        if port not in _HANDED_OUT and _bindable(port):
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError(f"no free port in [{SINGLE_PORTS.start}, {SINGLE_PORTS.stop})")


# Ingress replicas of one node under direct ingress take ports from a block of this size.
INGRESS_PORT_BLOCK = 64


def free_port_block(size: int, low: int = 20000, high: int = 32000) -> range:
    """`size` consecutive ports, all free now, below Linux's usual ephemeral range."""
    for _ in range(200):
        start = secrets.randbelow((high - low - size) // size) * size + low
        block = range(start, start + size)
        if _HANDED_OUT.isdisjoint(block) and all(_bindable(port) for port in block):
            _HANDED_OUT.update(block)
            return block
    raise RuntimeError(f"no block of {size} free ports in [{low}, {high})")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET6) as sock:
        try:
            sock.bind(("::", port))
        except OSError:
            return False
    return True


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
