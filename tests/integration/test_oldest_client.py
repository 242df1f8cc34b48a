"""The client distribution at its oldest allowed grpcio and protobuf (a clean venv, the wheel
built from this checkout; tests/distributions.py) against the real server: the CLI, the sync
client's batch with a bad image, the asyncio client and health."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import IMAGES_DIR, SEED_TOP1
from tests.distributions import Venv, floors
from tests.integration.conftest import Server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLIENT_SCRIPT = """
import asyncio, sys
import grpc, google.protobuf
from imgclf import AsyncClassifierClient, ClassifierClient

target, tiger = sys.argv[1], open(sys.argv[2], "rb").read()
with ClassifierClient(target) as client:
    items = client.classify_batch([tiger, b"not an image", tiger])
    print([item.top.label if item.ok else (item.index, item.reason) for item in items])
    print(client.health().name)

async def main():
    async with AsyncClassifierClient(target) as client:
        results = await asyncio.gather(*(client.classify(tiger) for _ in range(4)))
        print(sorted({r.top.label for r in results}))

asyncio.run(main())
print(grpc.__version__, google.protobuf.__version__)
"""


def test_the_oldest_allowed_client_install_classifies_through_the_real_server(
    server: Server, oldest_client: Venv
) -> None:
    images = [str(IMAGES_DIR / name) for name in SEED_TOP1]
    target = ["--target", server.cluster.grpc_target]
    cli = subprocess.run(
        [str(oldest_client.imgclf), *target, "classify", *images, "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    records = json.loads(cli.stdout)
    assert [r["predictions"][0]["label"] for r in records] == list(SEED_TOP1.values())

    done = subprocess.run(
        [str(oldest_client.python), "-c", CLIENT_SCRIPT, server.cluster.grpc_target, images[1]],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    batch, health, labels, versions = done.stdout.strip().splitlines()
    assert batch == "['tiger', (1, 'INVALID_IMAGE'), 'tiger']"
    assert health == "SERVING"
    assert labels == "['tiger']"
    oldest = floors("imgclf")
    assert versions == f"{oldest['grpcio']} {oldest['protobuf']}"  # the floors, nothing newer
