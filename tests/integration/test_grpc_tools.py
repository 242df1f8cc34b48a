"""Generic gRPC tools against the real server: examples/grpc_tools.sh (grpcurl through server
reflection, grpc_health_probe) when both are installed; neither is installable on this
project's machines (no package on PyPI, Debian 12 or npm: their releases are downloads from
GitHub, which these machines cannot reach), so the script test skips there and says so.

What grpcurl does is also checked here without it, every run: resolve the method and its
messages from server reflection alone (no .proto, no generated code), send the script's JSON
body, read the answer as JSON."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from tests.conftest import IMAGES_DIR
from tests.integration.conftest import Server

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "grpc_tools.sh"
TOOLS = ("grpcurl", "grpc_health_probe")


def test_the_grpc_tools_script_classifies_and_probes(server: Server) -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed here: {', '.join(missing)} (see this module's docstring)")
    done = subprocess.run(
        [str(SCRIPT), str(IMAGES_DIR / "tiger.jpg")],
        env={**os.environ, "TARGET": server.cluster.grpc_target},
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "imgclf.v1.ClassifierService" in done.stdout
    assert '"label": "tiger"' in done.stdout
    assert done.stdout.count("status: SERVING") == 2


def test_a_client_with_only_server_reflection_classifies_from_json(server: Server) -> None:
    database = ProtoReflectionDescriptorDatabase(server.channel)
    pool = descriptor_pool.DescriptorPool(database)
    method = pool.FindServiceByName("imgclf.v1.ClassifierService").FindMethodByName("Classify")
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    # the body examples/grpc_tools.sh sends
    image = base64.b64encode((IMAGES_DIR / "tiger.jpg").read_bytes()).decode()
    request = json_format.Parse(json.dumps({"image": image, "top_k": 3}), request_class())
    call = server.channel.unary_unary(
        "/imgclf.v1.ClassifierService/Classify",
        request_serializer=lambda message: message.SerializeToString(),
        response_deserializer=response_class.FromString,
    )
    answer = json.loads(json_format.MessageToJson(call(request, timeout=60)))
    assert answer["predictions"][0]["label"] == "tiger"
    assert len(answer["predictions"]) == 3
    assert answer["servedBy"]["coreIds"]


def test_reflection_answers_an_unknown_symbol_with_not_found(server: Server) -> None:
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(server.channel))
    with pytest.raises(KeyError):
        pool.FindServiceByName("imgclf.v1.NoSuchService")
