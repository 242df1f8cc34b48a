"""Every image's Python dependencies resolve here (scripts/image_requirements.py: pip's resolver
for the image's Python and platform, wheels only), so that a conflict fails the tests rather
than a `docker build` on EKS. Packages only the Neuron index serves are checked by what they
declare when that index does not answer (it does not, from these machines)."""

from __future__ import annotations

import pytest
from image_requirements import (
    IMAGE_PYTHON,
    ResolutionError,
    declared_conflicts,
    image_requirements,
    pip_resolve,
    project_requirements,
    resolve,
)
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.k8s.manifests import ROOT

pytestmark = pytest.mark.slow


def test_every_dockerfile_has_its_requirements_and_every_requirements_file_an_image() -> None:
    dockerfiles = {
        p.name.removeprefix("Dockerfile.") for p in (ROOT / "docker").glob("Dockerfile.*")
    }
    files = {p.stem for p in (ROOT / "docker" / "requirements").glob("*.txt")}
    assert dockerfiles == files == set(IMAGE_PYTHON)
    for image in IMAGE_PYTHON:
        text = (ROOT / "docker" / f"Dockerfile.{image}").read_text()
        assert f"docker/requirements/{image}.txt" in text
        assert f"rayproject/ray:2.60.0-py{IMAGE_PYTHON[image].replace('.', '')}-" in text


@pytest.mark.parametrize("image", sorted(IMAGE_PYTHON))
def test_the_image_resolves_with_its_pins(image: str) -> None:
    outcome = resolve(image)
    print(outcome.summary())
    assert outcome.problems == []
    general, _ = image_requirements(image)
    for pin in general:
        assert pin.specifier.contains(outcome.resolved[canonicalize_name(pin.name)])
    assert "ray" in outcome.resolved and "protobuf" in outcome.resolved


def test_a_conflict_with_the_projects_fails_the_resolution() -> None:
    # torch-neuron, the inf1 runtime, requires protobuf < 3.20 (issue 16); imgclf >= 5.26.1.
    with pytest.raises(ResolutionError, match="protobuf"):
        pip_resolve([*project_requirements(), Requirement("protobuf<3.20")], "3.11", None)


def test_what_neuron_only_packages_declare_is_checked_against_the_resolution() -> None:
    neuron = [
        Requirement("torch-neuronx==2.9.0.*"),
        Requirement("libneuronxla==2.2.17544.0"),
        Requirement("neuronx-cc==2.26.6360.0"),
    ]
    declared = {
        "torch-neuronx": ["torch==2.9.*", "protobuf>3.19", "libneuronxla>=2.2,<2.3"],
        "libneuronxla": ["neuronx-cc~=2.0"],
    }
    assert declared_conflicts(neuron, {"torch": "2.9.0", "protobuf": "5.26.1"}, declared) == []
    assert declared_conflicts(neuron, {"torch": "2.14.1", "protobuf": "5.26.1"}, declared) == [
        "torch-neuronx requires torch==2.9.*, the image gets torch 2.14.1"
    ]
    assert declared_conflicts(
        [Requirement("torch-neuronx==2.9.0.*"), Requirement("libneuronxla==2.3.1"), neuron[2]],
        {"torch": "2.9.0", "protobuf": "5.26.1"},
        declared,
    ) == ["torch-neuronx requires libneuronxla<2.3,>=2.2, the image gets libneuronxla 2.3.1"]
    assert declared_conflicts(neuron[:2], {"torch": "2.9.0", "protobuf": "5.26.1"}, declared) == [
        "libneuronxla requires neuronx-cc~=2.0, the image gets neuronx-cc None"
    ]
