"""Classify and ListModels through the real gRPC proxy, with the real embedded weights."""

from __future__ import annotations

import pytest

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc
from tests.conftest import SEED_TOP1
from tests.integration.conftest import NEURON_CORES

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", sorted(SEED_TOP1))
def test_seed_images_top5(
    stub: pb_grpc.ClassifierServiceStub, seed_images: dict[str, bytes], name: str
) -> None:
    response = stub.Classify(pb.ClassifyRequest(image=seed_images[name]), timeout=60)
    assert response.model == "efficientnet-lite0"
    predictions = response.predictions
    assert len(predictions) == 5
    assert predictions[0].label == SEED_TOP1[name]
    probabilities = [p.probability for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0.0 <= p <= 1.0 for p in probabilities) and sum(probabilities) <= 1.0 + 1e-5
    assert len({p.class_index for p in predictions}) == 5


def test_kitten_top3_matches_the_reference(
    stub: pb_grpc.ClassifierServiceStub, seed_images: dict[str, bytes]
) -> None:
    response = stub.Classify(pb.ClassifyRequest(image=seed_images["kitten_small.jpg"]), timeout=60)
    labels = [p.label for p in response.predictions[:3]]
    assert labels == ["tabby", "Egyptian cat", "tiger cat"]
    assert response.predictions[0].probability == pytest.approx(0.35, abs=0.05)


def test_served_by_names_a_neuron_core_running_the_cpu_fallback(
    stub: pb_grpc.ClassifierServiceStub, seed_images: dict[str, bytes]
) -> None:
    served = stub.Classify(pb.ClassifyRequest(image=seed_images["tiger.jpg"]), timeout=60).served_by
    assert served.replica_id
    assert served.node_id
    assert served.device_kind == pb.DEVICE_KIND_NEURON_CORE
    assert len(served.core_ids) == 1 and served.core_ids[0] in range(NEURON_CORES)
    assert served.backend == pb.BACKEND_CPU


def test_each_replica_holds_its_own_core(
    stub: pb_grpc.ClassifierServiceStub, seed_images: dict[str, bytes]
) -> None:
    images = [seed_images["tiger.jpg"]] * 8
    response = stub.ClassifyBatch(pb.ClassifyBatchRequest(images=images), timeout=120)
    cores = {item.served_by.replica_id: tuple(item.served_by.core_ids) for item in response.items}
    assert len(cores) == NEURON_CORES
    assert sorted(cores.values()) == [(core,) for core in range(NEURON_CORES)]


def test_list_models(stub: pb_grpc.ClassifierServiceStub) -> None:
    response = stub.ListModels(pb.ListModelsRequest(), timeout=30)
    assert response.default_model == "efficientnet-lite0"
    models = {model.name: model for model in response.models}
    assert list(models) == ["efficientnet-lite0", "resnet50"]
    lite0 = models["efficientnet-lite0"]
    assert (lite0.input_height, lite0.input_width, lite0.num_classes) == (224, 224, 1000)
    assert lite0.replicas == NEURON_CORES
    assert lite0.device_kind == pb.DEVICE_KIND_NEURON_CORE
    assert lite0.backend == pb.BACKEND_CPU
    assert lite0.max_batch_size == 8
    assert (models["resnet50"].replicas, models["resnet50"].device_kind) == (1, pb.DEVICE_KIND_CPU)
    assert response.limits.max_images_per_batch == 256
    assert response.limits.max_image_bytes == 20 * 1024 * 1024
    assert response.limits.max_image_pixels == 40_000_000


def test_resnet50_from_a_weights_file(
    stub: pb_grpc.ClassifierServiceStub, seed_images: dict[str, bytes]
) -> None:
    request = pb.ClassifyRequest(image=seed_images["tiger.jpg"], model="resnet50", top_k=3)
    response = stub.Classify(request, timeout=60)
    assert response.model == "resnet50"
    assert len(response.predictions) == 3  # random weights: labels mean nothing
    assert response.served_by.device_kind == pb.DEVICE_KIND_CPU
    assert list(response.served_by.core_ids) == []
    batch = stub.ClassifyBatch(
        pb.ClassifyBatchRequest(images=[seed_images["tiger.jpg"]] * 3, model="resnet50"),
        timeout=60,
    )
    assert [len(item.predictions) for item in batch.items] == [5, 5, 5]
