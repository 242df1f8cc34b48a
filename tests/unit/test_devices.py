"""devices: reading the cores Ray assigned from the environment."""

from __future__ import annotations

import pytest

from imgclf_serve.devices import AssignedDevice, DeviceKind, assigned_device, parse_core_ids


@pytest.mark.parametrize(
    ("value", "ids"),
    [("2", (2,)), ("0,1", (0, 1)), ("0-3", (0, 1, 2, 3)), ("4-5,8", (4, 5, 8)), ("", ())],
)
def test_parse_core_ids(value: str, ids: tuple[int, ...]) -> None:
    assert parse_core_ids(value) == ids


def test_neuron_core_from_neuron_rt_visible_cores() -> None:
    device = assigned_device(DeviceKind.NEURON_CORE, {"NEURON_RT_VISIBLE_CORES": "3"})
    assert device == AssignedDevice(DeviceKind.NEURON_CORE, (3,))
    assert device.describe() == "neuron_core 3"


def test_gpu_from_cuda_visible_devices() -> None:
    device = assigned_device(
        DeviceKind.GPU, {"CUDA_VISIBLE_DEVICES": "1", "NEURON_RT_VISIBLE_CORES": "0"}
    )
    assert device.core_ids == (1,)


def test_cpu_has_no_core_ids() -> None:
    assert assigned_device(DeviceKind.CPU, {"CUDA_VISIBLE_DEVICES": "0"}).core_ids == ()


def test_garbage_is_reported() -> None:
    with pytest.raises(RuntimeError, match="NEURON_RT_VISIBLE_CORES"):
        assigned_device(DeviceKind.NEURON_CORE, {"NEURON_RT_VISIBLE_CORES": "GPU-abc"})
