"""Is each model ready: at least its `min_ready_replicas` RUNNING in Serve's controller. A
replica is RUNNING only once its constructor and reconfigure() returned, and both warm its
model up; busy replicas count (load does not take a pod out of its Service); replicas failing
Serve's health check (a hung core) stop counting when Serve replaces them.

The controller is asked at most every `max_age_s` (probes of many pods, Watch streams); if it
cannot be asked, the last counts stand: serving does not need it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from ray import serve

logger = logging.getLogger("ray.serve")

# The longest a health answer waits for Serve's controller; the readiness probes' timeouts
# exceed it (k8s/).
CONTROLLER_TIMEOUT_S = 2.0
REPLICA_STATES_MAX_AGE_S = 1.0


class Readiness:
    """`read_running()` returns RUNNING replicas per deployment (see `running_in_serve`)."""

    def __init__(
        self,
        min_ready: Mapping[str, int],
        read_running: Callable[[], Awaitable[dict[str, int]]],
        max_age_s: float = REPLICA_STATES_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._min_ready = dict(min_ready)
        self._read_running = read_running
        self._max_age_s = max_age_s
        self._clock = clock
        self._running: dict[str, int] = {}
        self._read_at = -math.inf

    async def running(self) -> dict[str, int]:
        """RUNNING replicas per deployment, as the controller last reported them."""
        now = self._clock()
        if now - self._read_at > self._max_age_s:
            self._read_at = now
            try:
                self._running = await asyncio.wait_for(self._read_running(), CONTROLLER_TIMEOUT_S)
            except Exception as exc:
                logger.warning("health: Serve's controller did not answer (%s)", type(exc).__name__)
        return self._running

    async def refresh_forever(self, period_s: float = REPLICA_STATES_MAX_AGE_S) -> None:
        """Read the controller every `period_s`, so last_running follows autoscaling."""
        while True:
            await self.running()
            await asyncio.sleep(period_s)

    def last_running(self) -> Mapping[str, int]:
        """The counts of the last read, without asking the controller (for the request path:
        the health service and check_health keep them fresh)."""
        return self._running

    async def ready(self, models: Sequence[str]) -> bool:
        """True while each of `models` has at least its `min_ready_replicas` warm."""
        running = await self.running()
        short = [
            f"{name} {running.get(name, 0)}/{self._min_ready[name]}"
            for name in models
            if running.get(name, 0) < self._min_ready[name]
        ]
        if short:
            logger.info("health check: not serving (warm replicas: %s)", ", ".join(short))
        return not short


def running_in_serve(app_name: str) -> Callable[[], Awaitable[dict[str, int]]]:
    """Reads RUNNING replicas per deployment of `app_name` from Serve's controller."""

    async def read() -> dict[str, int]:
        status = await asyncio.to_thread(serve.status)
        app = status.applications[app_name]
        return {
            deployment: count_running(overview.replica_states)
            for deployment, overview in app.deployments.items()
        }

    return read


def count_running(replica_states: Mapping[Any, int]) -> int:
    return sum(
        n for state, n in replica_states.items() if str(getattr(state, "value", state)) == "RUNNING"
    )
