"""The client library and the `imgclf` command against the real Ray Serve application."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from imgclf import (
    AsyncClassifierClient,
    Classification,
    ClassifierClient,
    DeviceKind,
    HealthStatus,
    InvalidArgument,
    InvalidImage,
    ItemError,
    ModelNotFound,
)
from tests.conftest import IMAGES_DIR, SEED_TOP1
from tests.integration.conftest import NEURON_CORES, Server, assert_no_internals

pytestmark = pytest.mark.integration

IMGCLF = Path(sys.executable).parent / "imgclf"  # the console script pyproject installs


@pytest.fixture(scope="module")
def client(server: Server):  # type: ignore[no-untyped-def]
    with ClassifierClient(server.cluster.grpc_target, timeout=60) as client:
        yield client


def test_sync_client_classifies_the_seed_images(client: ClassifierClient) -> None:
    for name, label in SEED_TOP1.items():
        result = client.classify(IMAGES_DIR / name)
        assert result.top.label == label and len(result.predictions) == 5
        assert result.model == "efficientnet-lite0"
        assert result.served_by is not None
        assert result.served_by.device_kind is DeviceKind.NEURON_CORE
        assert set(result.served_by.core_ids) <= set(range(NEURON_CORES))


def test_sync_batch_keeps_order_and_fails_only_the_bad_image(client: ClassifierClient) -> None:
    paths = [IMAGES_DIR / name for name in SEED_TOP1]
    results = client.classify_batch([*paths, b"not an image", paths[0]], top_k=2)
    labels = [r.top.label if isinstance(r, Classification) else None for r in results]
    assert labels == [*SEED_TOP1.values(), None, SEED_TOP1["kitten_small.jpg"]]
    bad = results[3]
    assert isinstance(bad, ItemError) and bad.reason == "INVALID_IMAGE"
    assert bad.message.startswith("image 3: cannot decode")
    assert_no_internals(bad.message)


def test_errors_map_to_the_exception_tree(client: ClassifierClient) -> None:
    with pytest.raises(InvalidImage) as bad:
        client.classify(b"GIF89a truncated")
    assert bad.value.reason == "INVALID_IMAGE" and bad.value.request_id
    assert isinstance(bad.value.__cause__, grpc.RpcError)
    assert_no_internals(bad.value.message)
    with pytest.raises(ModelNotFound) as missing:
        client.classify(IMAGES_DIR / "tiger.jpg", model="resnet152")
    assert "efficientnet-lite0" in missing.value.message
    with pytest.raises(InvalidArgument) as top_k:
        client.classify(IMAGES_DIR / "tiger.jpg", top_k=5000)
    assert top_k.value.reason == "INVALID_ARGUMENT" and not isinstance(top_k.value, InvalidImage)


def test_models_and_health(client: ClassifierClient) -> None:
    models = client.models()
    assert {m.name for m in models.models} == {"efficientnet-lite0", "resnet50"}
    assert models.get("efficientnet-lite0").replicas == NEURON_CORES  # type: ignore[union-attr]
    assert models.limits.max_images_per_batch > 0
    assert client.health() is HealthStatus.SERVING


def test_async_client_splits_a_batch_over_calls_in_order(server: Server) -> None:
    seeds = [(IMAGES_DIR / name).read_bytes() for name in SEED_TOP1]
    images = [seeds[i % 3] for i in range(40)]

    async def main() -> tuple[list, Classification]:  # type: ignore[type-arg]
        target = server.cluster.grpc_target
        async with AsyncClassifierClient(target, timeout=120, max_images_per_call=16) as client:
            return await client.classify_batch(images, top_k=1), await client.classify(seeds[1])

    results, single = asyncio.run(main())
    expected = list(SEED_TOP1.values())
    assert [r.top.label for r in results if isinstance(r, Classification)] == [
        expected[i % 3] for i in range(40)
    ]
    assert single.top.label == expected[1]
    cores = {r.served_by.core_ids for r in results if isinstance(r, Classification) and r.served_by}
    assert len(cores) == NEURON_CORES  # every call was spread over every core


def run_cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(IMGCLF), *args, "--target", server.cluster.grpc_target]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_cli_json_records_and_the_prototypes_shape(server: Server) -> None:
    paths = [str(IMAGES_DIR / name) for name in SEED_TOP1]
    done = run_cli(server, "classify", *paths, "--json")
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert [r["path"] for r in records] == paths
    for found, label in zip(records, SEED_TOP1.values(), strict=True):
        assert found["model"] == "efficientnet-lite0" and len(found["predictions"]) == 5
        assert found["predictions"][0]["label"] == label
        assert found["served_by"]["device_kind"] == "neuron_core"

    done = run_cli(server, "classify", *paths, "--prototype-json")
    per_image = json.loads(done.stdout)
    assert isinstance(per_image, list) and len(per_image) == 3
    for top5, label in zip(per_image, SEED_TOP1.values(), strict=True):
        assert len(top5) == 5 and next(iter(top5)) == label
        assert all(isinstance(p, float) and 0 <= p <= 1 for p in top5.values())

    single = run_cli(server, "classify", paths[1], "--prototype-json")
    assert single.returncode == 0 and next(iter(json.loads(single.stdout))) == "tiger"


def test_cli_recursive_reports_failures_and_exits_non_zero(server: Server, tmp_path: Path) -> None:
    for name in SEED_TOP1:
        (tmp_path / name).write_bytes((IMAGES_DIR / name).read_bytes())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    done = run_cli(server, "classify", "--recursive", str(tmp_path), "--top-k", "1")
    assert done.returncode == 1
    assert "1. tiger" in done.stdout and "1. strawberry" in done.stdout
    assert "classified 3 of 4 images" in done.stderr
    assert "broken.png: INVALID_ARGUMENT: image 2: cannot decode" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_models_and_health(server: Server) -> None:
    models = run_cli(server, "models")
    assert models.returncode == 0 and "efficientnet-lite0 (default)" in models.stdout
    assert "resnet50" in models.stdout and "neuron_core" in models.stdout
    health = run_cli(server, "health")
    assert (health.returncode, health.stdout) == (0, "SERVING\n")
