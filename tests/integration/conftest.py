"""One real local Ray cluster for the integration tests, with the real Serve config.

The cluster declares `neuron_cores: 4` to Ray, as a node with one Inferentia 1 chip would.
There is no Neuron hardware or runtime here, so each replica holds a real, distinct core id
but runs the CPU backend (the `auto` fallback). ResNet50 runs beside it on one CPU replica,
from a weights file of random values written by the test.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import yaml

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc
from imgclf_tools.local_cluster import DEFAULT_CONFIG, LocalCluster
from tests.conftest import IMAGES_DIR
from tests.integration.harness import REPORTED

NEURON_CORES = 4
INGRESS_REPLICAS = 2  # the Serve config's ingress.cores_per_replica: 2 over 4 NeuronCores
REQUEST_LIMIT = 32 * 1024 * 1024  # smaller than the default, to test it without 64 MiB calls
# Admission sized to this VM (~20 img/s in all): an admitted call waits seconds, not minutes.
# The ingress bound leaves room for single images beside one ClassifyBatch(256).
INGRESS_MAX_IMAGES = 320
REPLICA_MAX_IMAGES = 64
FIGURES_FILE = Path(__file__).resolve().parents[2] / ".run" / "reliability-figures.txt"

pytestmark = pytest.mark.integration


@dataclass
class Server:
    cluster: LocalCluster
    config_path: Path
    channel: grpc.Channel
    stub: pb_grpc.ClassifierServiceStub
    tiger: bytes

    def redeploy(self, edit) -> None:  # type: ignore[no-untyped-def]
        """Redeploy the Serve config after `edit(config_dict)` changes it."""
        config = yaml.safe_load(self.config_path.read_text())
        edit(config)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.cluster.deploy(self.config_path)

    def user_config(self, deployment: str) -> dict[str, object]:
        """The deployment's `user_config` in the deployed config."""
        (app,) = yaml.safe_load(self.config_path.read_text())["applications"]
        (entry,) = (d for d in app["deployments"] if d["name"] == deployment)
        return dict(entry.get("user_config", {}))

    def set_deployment_options(self, deployment: str, **options: object) -> dict[str, object]:
        """Redeploy with `options` set on one deployment of the config's `deployments:`
        section (None removes a key); returns the options as they were."""
        (app,) = yaml.safe_load(self.config_path.read_text())["applications"]
        (entry,) = (d for d in app["deployments"] if d["name"] == deployment)
        original = {key: entry.get(key) for key in options}
        self.redeploy(lambda config: _set_options(config, deployment, options))
        return original

    @contextlib.contextmanager
    def deployment_options(self, deployment: str, **options: object) -> Iterator[None]:
        """set_deployment_options for the duration of a `with` block."""
        original = self.set_deployment_options(deployment, **options)
        try:
            yield
        finally:
            self.set_deployment_options(deployment, **original)


def _set_options(config: dict, deployment: str, options: dict) -> None:  # type: ignore[type-arg]
    (app,) = config["applications"]
    (entry,) = (d for d in app["deployments"] if d["name"] == deployment)
    for key, value in options.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value


def integration_config(resnet50_weights: Path) -> dict:  # type: ignore[type-arg]
    """serve/serve_config.yaml with test-sized CPU reservations and a second model."""
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    (app,) = config["applications"]
    (lite0,) = app["args"]["models"]
    lite0["cpus_per_replica"] = 0.25  # four NeuronCore replicas on a 2-CPU machine
    args = app["args"]
    args.setdefault("ingress", {})["cpus_per_replica"] = 0.25  # two ingress replicas (4 cores / 2)
    args.setdefault("limits", {})["max_request_bytes"] = REQUEST_LIMIT
    args.setdefault("admission", {}).update(
        ingress_max_images=INGRESS_MAX_IMAGES, replica_max_images=REPLICA_MAX_IMAGES
    )
    # Hedged shares are answered by another replica than their slot's: the placement tests
    # need exact placement. test_stragglers.py turns hedging on and measures it.
    (ingress,) = (d for d in app["deployments"] if d["name"] == "ClassifierIngress")
    ingress.setdefault("user_config", {}).setdefault("hedging", {})["enabled"] = False
    # Rolling updates (test_graceful_shutdown.py) replace two of the four Lite0 replicas at a
    # time instead of Serve's 20 % (one): half the time, and still no call may fail.
    (lite0_options,) = (d for d in app["deployments"] if d["name"] == lite0["name"])
    lite0_options["rolling_update_percentage"] = 0.5
    app["args"]["models"].append(
        {
            "name": "resnet50",
            "weights": str(resnet50_weights),
            "device": "cpu",
            "replicas": 1,
            "cpus_per_replica": 0.25,
        }
    )
    return config


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, resnet50_weights: Path) -> Iterator[Server]:
    cluster = LocalCluster.create()
    config_path = tmp_path_factory.mktemp("serve") / "serve_config.yaml"
    config_path.write_text(yaml.safe_dump(integration_config(resnet50_weights), sort_keys=False))
    try:
        cluster.start(
            num_cpus=2,
            resources={"neuron_cores": NEURON_CORES},
            # metrics reach Prometheus within a second or two instead of ten
            system_config={"metrics_report_interval_ms": 1000},
        )
        cluster.deploy(config_path)
        cluster.wait_serving(timeout_s=600)
        with grpc.insecure_channel(cluster.grpc_target) as channel:
            stub = pb_grpc.ClassifierServiceStub(channel)
            yield Server(
                cluster, config_path, channel, stub, (IMAGES_DIR / "tiger.jpg").read_bytes()
            )
    finally:
        cluster.stop()
        assert cluster.pids() == [], "processes of the test cluster are still running"


@pytest.fixture(scope="session")
def stub(server: Server) -> pb_grpc.ClassifierServiceStub:
    return server.stub


INTERNALS = re.compile(
    r"Traceback|File \"|\.py\b|pid=|\bpid\b|ray::|ActorID|actor_id|\b\d{1,3}(\.\d{1,3}){3}\b",
    re.IGNORECASE,
)


def assert_no_internals(details: str | None) -> None:
    """A status message for a client: no traceback, file path, PID, actor id or IP."""
    assert details, "the status has no message"
    assert not INTERNALS.search(details), f"internal detail leaked: {details!r}"


def replicas_of(response: pb.ClassifyBatchResponse) -> list[str]:
    return [item.served_by.replica_id for item in response.items]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORTED:
        return
    terminalreporter.section("imgclf reliability figures")
    lines = [f"{scenario}: {text}" for scenario, text in REPORTED]
    for line in lines:
        terminalreporter.write_line(line)
    FIGURES_FILE.parent.mkdir(exist_ok=True)
    FIGURES_FILE.write_text("\n".join(lines) + "\n")
