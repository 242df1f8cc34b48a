"""admission.py: images and bytes in flight, not calls."""

from __future__ import annotations

import pytest

from imgclf_serve.admission import WorkAdmission
from imgclf_serve.errors import Overloaded


def test_calls_are_admitted_while_their_images_fit() -> None:
    admission = WorkAdmission(max_images=10)
    assert admission.try_admit(6) and admission.try_admit(4)
    assert not admission.try_admit(1)
    admission.release(4)
    assert admission.try_admit(3)
    assert admission.images == 9


def test_an_idle_server_admits_a_call_over_the_bound() -> None:
    admission = WorkAdmission(max_images=10)
    assert admission.try_admit(256)  # a ClassifyBatch at the per-call limit still gets through
    assert not admission.try_admit(1)
    admission.release(256)
    assert admission.try_admit(1)


def test_bytes_are_bounded_too() -> None:
    admission = WorkAdmission(max_images=100, max_bytes=1000)
    with admission.admitted(2, 900):
        refused = pytest.raises(Overloaded, match=r"limit of 1000 bytes of images in flight")
        with refused, admission.admitted(1, 200):
            pass
        with admission.admitted(1, 100):
            assert admission.bytes == 1000
    assert admission.images == 0 and admission.bytes == 0


def test_refusal_names_the_bound_and_says_to_retry() -> None:
    admission = WorkAdmission(max_images=4, where="ingress")
    refused = pytest.raises(Overloaded, match=r"ingress is at its limit of 4 images in flight")
    with admission.admitted(4), refused, admission.admitted(1):
        pass
    with pytest.raises(ValueError):
        WorkAdmission(max_images=0)
