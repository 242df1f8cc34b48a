"""A model of your own, end to end: a small network trained here to tell 10 colours apart (on
images generated here, through the server's own preprocessing), saved as TorchScript with a
labels file, named in a Serve config beside the default model (once as local files, once as
objects in a local S3-compatible store, moto's), and served: ListModels
describes it with its own classes and input size, Classify and ClassifyBatch answer with its
labels. Then two bad new versions: one whose labels file is missing (the deploy fails with a
message naming the file), one whose model file is not TorchScript and one whose labels no
longer match its outputs (their replicas fail to start, Serve stops the rolling update and
says why); through each, version 1 keeps serving
without a failed call, as ListModels says. Its own cluster; the model and the ingress start a
new version's replica before stopping the old (`max_surge_percent`)."""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from imgclf import ClassifierClient, ImgclfError
from imgclf_serve.preprocess import ImageLimits, PreprocessSpec, load_image
from imgclf_tools.local_cluster import DEFAULT_CONFIG, LocalCluster
from tests.conftest import IMAGES_DIR
from tests.integration.harness import wait_for
from tests.s3 import local_s3, s3_client

pytestmark = [pytest.mark.integration, pytest.mark.slow]
COLORS = {
    "red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220),
    "yellow": (230, 230, 20), "cyan": (20, 220, 220), "magenta": (220, 20, 220),
    "white": (245, 245, 245), "black": (10, 10, 10), "gray": (128, 128, 128),
    "orange": (250, 140, 0),
}  # fmt: skip
INPUT = {"resize": 32, "crop": 32, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


class ColorNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Conv2d(3, 16, 3)
        self.head = torch.nn.Linear(16, len(COLORS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.features(x)).mean(dim=(2, 3)))


def color_jpeg(rgb: tuple[int, int, int], rng: np.random.Generator, size: int = 48) -> bytes:
    noise = rng.integers(-12, 13, size=(size, size, 3))
    pixels = np.clip(np.asarray(rgb) + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def train_color_model(directory: Path) -> tuple[Path, Path]:
    """(TorchScript file, labels file) of a ColorNet trained on generated images, each put
    through the preprocessing the server will apply (input INPUT)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = PreprocessSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in INPUT.items()})
    images, targets = [], []
    for index, rgb in enumerate(COLORS.values()):
        for _ in range(12):
            images.append(load_image(color_jpeg(rgb, rng), spec, ImageLimits()))
            targets.append(index)
    x, y = torch.from_numpy(np.stack(images)), torch.tensor(targets)
    model = ColorNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    assert (model(x).argmax(dim=1) == y).all(), "the colour model did not learn"
    model_path, labels_path = directory / "colors.pt", directory / "colors.txt"
    torch.jit.save(torch.jit.script(model.eval()), str(model_path))
    labels_path.write_text("\n".join(COLORS) + "\n")
    return model_path, labels_path


S3_MODEL = "s3://models/colors/1/colors.pt"
S3_LABELS = "s3://models/colors/1/colors.txt"


def serve_config(model_path: Path, labels_path: Path) -> dict:  # type: ignore[type-arg]
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    (app,) = config["applications"]
    (lite0,) = app["args"]["models"]
    lite0.update(device="cpu", replicas=1, cpus_per_replica=0.25)
    app["args"]["models"].append(
        {
            "name": "colors",
            "source": {"torchscript": str(model_path)},
            "labels": str(labels_path),
            "input": INPUT,
            "device": "cpu",
            "replicas": 1,
            "cpus_per_replica": 0.25,
        }
    )
    app["args"]["models"].append(
        {
            "name": "colors-s3",
            "source": {"torchscript": S3_MODEL},
            "labels": S3_LABELS,
            "input": INPUT,
            "device": "cpu",
            "replicas": 1,
            "cpus_per_replica": 0.25,
        }
    )
    app["args"]["ingress"] = {"replicas": 1, "cpus_per_replica": 0.25}
    # One replica each: start the new version's before stopping the old (Ray Serve's default
    # stops first), so that a redeploy never leaves the model, or the front, without one.
    for name in ("colors", "ClassifierIngress"):
        entry = next((d for d in app["deployments"] if d["name"] == name), None)
        if entry is None:
            entry = {"name": name}
            app["deployments"].append(entry)
        entry["max_surge_percent"] = 100
    return config


@pytest.fixture(scope="module")
def s3_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with local_s3(tmp_path_factory.mktemp("model-cache")) as env:
        yield env


def upload(env: dict[str, str], model_path: Path, labels_path: Path) -> None:
    client = s3_client(env)
    client.create_bucket(Bucket="models")
    for path, uri in ((model_path, S3_MODEL), (labels_path, S3_LABELS)):
        client.upload_file(str(path), "models", uri.removeprefix("s3://models/"))


@pytest.fixture(scope="module")
def deployed(
    tmp_path_factory: pytest.TempPathFactory, s3_store: dict[str, str]
) -> Iterator[tuple[LocalCluster, Path]]:
    directory = tmp_path_factory.mktemp("own-model")
    model_path, labels_path = train_color_model(directory)
    upload(s3_store, model_path, labels_path)
    config_path = directory / "serve_config.yaml"
    config_path.write_text(yaml.safe_dump(serve_config(model_path, labels_path), sort_keys=False))
    cluster = LocalCluster.create()
    try:
        cluster.start(num_cpus=2, extra_env=s3_store)
        cluster.deploy(config_path)
        cluster.wait_serving(timeout_s=600)
        yield cluster, config_path
    finally:
        cluster.stop()
        assert cluster.pids() == [], "processes of the own-model cluster are still running"


def test_your_own_model_is_listed_and_answers_with_its_labels(
    deployed: tuple[LocalCluster, Path],
) -> None:
    cluster, _ = deployed
    rng = np.random.default_rng(1)
    with ClassifierClient(cluster.grpc_target, timeout=60) as client:
        listed = client.models()
        colors = next(m for m in listed.models if m.name == "colors")
        assert listed.default_model == "efficientnet-lite0"
        assert (colors.num_classes, colors.input_width, colors.input_height) == (10, 32, 32)
        red = client.classify(color_jpeg(COLORS["red"], rng), model="colors", top_k=3)
        assert red.top.label == "red" and len(red.predictions) == 3
        assert {p.label for p in red.predictions} <= set(COLORS)
        batch = client.classify_batch(
            [color_jpeg(rgb, rng) for rgb in COLORS.values()], model="colors"
        )
        assert [item.top.label for item in batch] == list(COLORS)  # type: ignore[union-attr]
        from_s3 = client.classify(color_jpeg(COLORS["green"], rng), model="colors-s3")
        assert from_s3.top.label == "green"  # the same model, fetched from S3
        tiger = client.classify((IMAGES_DIR / "tiger.jpg").read_bytes())
        assert tiger.top.label == "tiger"  # the default model, beside it
        with pytest.raises(ImgclfError) as refused:
            client.classify(color_jpeg(COLORS["red"], rng), model="colors", top_k=11)
        assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
        assert "[1, 10]" in refused.value.message


def test_a_new_version_that_cannot_load_fails_its_deploy_and_the_old_one_serves(
    deployed: tuple[LocalCluster, Path], tmp_path: Path
) -> None:
    cluster, config_path = deployed
    config = yaml.safe_load(config_path.read_text())
    (app,) = config["applications"]
    (colors,) = (m for m in app["args"]["models"] if m["name"] == "colors")
    colors["labels"] = str(tmp_path / "missing-labels.txt")
    broken = tmp_path / "serve_config.yaml"
    broken.write_text(yaml.safe_dump(config, sort_keys=False))
    cluster.deploy(broken)

    def failed_with_message() -> str | None:
        script = (
            "import json, ray; from ray import serve; ray.init(logging_level='ERROR'); "
            "a = serve.status().applications['imgclf']; print(json.dumps([a.status, a.message]))"
        )
        status, message = cluster.query(script)
        return message if status == "DEPLOY_FAILED" else None

    assert wait_for(lambda: failed_with_message() is not None, timeout_s=120) is not None
    message = failed_with_message() or ""
    assert "model colors: labels file" in message and "missing-labels.txt does not exist" in message
    rng = np.random.default_rng(2)
    with ClassifierClient(cluster.grpc_target, timeout=60) as client:
        assert client.classify(color_jpeg(COLORS["blue"], rng), model="colors").top.label == "blue"


@pytest.mark.parametrize("fault", ["not TorchScript", "labels do not match"])
def test_a_new_version_whose_replicas_cannot_start_leaves_the_old_one_serving(
    deployed: tuple[LocalCluster, Path], tmp_path: Path, fault: str
) -> None:
    cluster, config_path = deployed
    config = yaml.safe_load(config_path.read_text())
    (app,) = config["applications"]
    (colors,) = (m for m in app["args"]["models"] if m["name"] == "colors")
    if fault == "not TorchScript":
        corrupt = tmp_path / "colors-v3.pt"
        corrupt.write_bytes(np.random.default_rng(3).bytes(4096))
        colors.update(version="3", source={"torchscript": str(corrupt)})
        expected = "is not a TorchScript file"
    else:  # one label short: the model's 10 outputs no longer match
        short = tmp_path / "colors-v4.txt"
        short.write_text("\n".join(list(COLORS)[:9]) + "\n")
        colors.update(version="4", labels=str(short))
        expected = "outputs 10 classes but its labels file names 9"
    version_3 = tmp_path / "serve_config.yaml"
    version_3.write_text(yaml.safe_dump(config, sort_keys=False))

    outcomes: Counter[str] = Counter()
    stop = threading.Event()

    def keep_classifying() -> None:
        rng = np.random.default_rng(4)
        with ClassifierClient(cluster.grpc_target, timeout=60, retry=None) as client:
            while not stop.is_set():
                try:
                    answer = client.classify(color_jpeg(COLORS["blue"], rng), model="colors")
                    outcomes[answer.top.label] += 1
                except ImgclfError as exc:
                    outcomes[exc.code.name] += 1

    def failed_message() -> str | None:
        script = (
            "import json, ray; from ray import serve; ray.init(logging_level='ERROR'); "
            "d = serve.status().applications['imgclf'].deployments.get('colors'); "
            "print(json.dumps(d.message if d else ''))"
        )
        message: str = cluster.query(script)
        return message if expected in message else None

    caller = threading.Thread(target=keep_classifying)
    caller.start()
    try:
        cluster.deploy(version_3)
        failed_after_s = wait_for(lambda: failed_message() is not None, timeout_s=240)
    finally:
        stop.set()
        caller.join()
    with ClassifierClient(cluster.grpc_target, timeout=60) as client:
        listed = next(m for m in client.models().models if m.name == "colors")
    assert failed_after_s is not None, "Serve never reported the new version's failure"
    assert "model colors" in (failed_message() or "")
    assert set(outcomes) == {"blue"} and outcomes["blue"] > 0, outcomes  # nothing failed
    assert listed.version == "1"  # the replica serving is the old version's
