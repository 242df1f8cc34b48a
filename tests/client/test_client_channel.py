"""The channel: TLS and mutual TLS against a TLS-terminating fake server, and round-robin
over several server addresses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from imgclf import TLS, ClassifierClient, RetryPolicy, Unavailable
from tests.client.certs import Certificates, make_pki
from tests.client.fake_server import FakeClassifierServicer, FakeServer

NO_RETRY = None


@pytest.fixture(scope="module")
def pki() -> Certificates:
    return make_pki(("imgclf.test",))


@pytest.fixture
def mtls_server(pki: Certificates) -> Iterator[FakeServer]:
    credentials = grpc.ssl_server_credentials(
        [(pki.server.private_key, pki.server.certificate)],
        root_certificates=pki.ca,
        require_client_auth=True,
    )
    server = FakeServer(FakeClassifierServicer(), credentials).start()
    try:
        yield server
    finally:
        server.stop()


def test_mutual_tls_with_pem_bytes_and_files(
    mtls_server: FakeServer, pki: Certificates, tmp_path: Path
) -> None:
    tls = TLS(pki.ca, pki.client.certificate, pki.client.private_key, server_name="imgclf.test")
    with ClassifierClient(mtls_server.target, tls=tls) as client:
        assert client.classify(b"secure").top.label == "secure"

    for name, data in [
        ("ca.pem", pki.ca),
        ("cert.pem", pki.client.certificate),
        ("key.pem", pki.client.private_key),
    ]:
        (tmp_path / name).write_bytes(data)
    from_files = TLS(
        tmp_path / "ca.pem",
        str(tmp_path / "cert.pem"),
        tmp_path / "key.pem",
        server_name="imgclf.test",
    )
    with ClassifierClient(mtls_server.target, tls=from_files) as client:
        assert client.classify(b"files").top.label == "files"


@pytest.mark.parametrize(
    "tls",
    [
        pytest.param(None, id="plaintext"),
        pytest.param("no-client-cert", id="no-client-certificate"),
        pytest.param("wrong-name", id="certificate-name-mismatch"),
        pytest.param("other-ca", id="untrusted-server"),
    ],
)
def test_refused_tls_setups_raise_unavailable(
    mtls_server: FakeServer, pki: Certificates, tls: str | None
) -> None:
    settings = {
        None: None,
        "no-client-cert": TLS(pki.ca, server_name="imgclf.test"),
        "wrong-name": TLS(
            pki.ca, pki.client.certificate, pki.client.private_key, server_name="other.test"
        ),
        "other-ca": TLS(
            make_pki().ca, pki.client.certificate, pki.client.private_key, server_name="imgclf.test"
        ),
    }[tls]
    client = ClassifierClient(mtls_server.target, tls=settings, retry=NO_RETRY, timeout=5)
    with client, pytest.raises(Unavailable):
        client.classify(b"x")
    assert mtls_server.servicer.calls == []


def test_tls_options_are_checked() -> None:
    with pytest.raises(ValueError, match="both certificate_chain and private_key"):
        TLS(certificate_chain=b"cert")


def test_round_robin_spreads_calls_over_every_address() -> None:
    servers = [FakeServer(FakeClassifierServicer()).start() for _ in range(2)]
    try:
        target = "ipv4:" + ",".join(f"127.0.0.1:{server.port}" for server in servers)
        with ClassifierClient(target, retry=RetryPolicy()) as client:
            # round_robin uses the addresses that are connected; wait until both are
            for _ in range(50):
                client.classify(b"warm-up")
                if all(server.servicer.calls for server in servers):
                    break
            for server in servers:
                server.servicer.calls.clear()
            for _ in range(10):
                client.classify(b"x")
        counts = [len(server.servicer.calls_to("Classify")) for server in servers]
    finally:
        for server in servers:
            server.stop()
    assert counts == [5, 5]


def test_channel_options_carry_keepalive_retries_and_round_robin() -> None:
    import json

    from imgclf import Keepalive
    from imgclf.options import ChannelSettings

    settings = ChannelSettings(
        "dns:///imgclf.ml.svc:9000",
        TLS(server_name="imgclf.test"),
        RetryPolicy(),
        Keepalive(time_s=60, timeout_s=5),
        max_message_bytes=32 << 20,
    )
    options = dict(settings.options())
    assert options["grpc.keepalive_time_ms"] == 60_000
    assert options["grpc.keepalive_timeout_ms"] == 5_000
    assert options["grpc.max_send_message_length"] == 32 << 20
    assert options["grpc.per_rpc_retry_buffer_size"] == 32 << 20
    assert options["grpc.ssl_target_name_override"] == "imgclf.test"
    config = json.loads(options["grpc.service_config"])
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    (method,) = config["methodConfig"]
    assert method["name"] == [{"service": "imgclf.v1.ClassifierService"}]
    assert method["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]

    plain = dict(ChannelSettings("127.0.0.1:9000", None, None, None, 1 << 20).options())
    assert plain["grpc.enable_retries"] == 0 and "grpc.keepalive_time_ms" not in plain
    assert "methodConfig" not in json.loads(plain["grpc.service_config"])
