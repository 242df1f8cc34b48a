"""Server error reasons and the imgclf.v1.ErrorReason enum are the same vocabulary."""

from __future__ import annotations

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf_serve import wire
from imgclf_serve.errors import ClassifyError, InvalidImage, Reason
from imgclf_serve.results import ItemError


def test_every_reason_has_a_wire_value_and_back() -> None:
    wire_names = set(pb.ErrorReason.keys()) - {"ERROR_REASON_UNSPECIFIED"}
    ours = {pb.ErrorReason.Name(wire.error_reason(reason)) for reason in Reason}
    assert ours == wire_names


def test_item_error_round_trips_through_an_exception() -> None:
    error = ItemError.from_exception(InvalidImage("cannot decode"))
    again = error.to_exception()
    assert (again.code, again.reason, again.message) == (error.code, error.reason, error.message)
    assert ClassifyError("boom").reason is Reason.INTERNAL
