"""The `imgclf` command against FakeClassifierServicer (a fake server): output shapes, exit
statuses and one-line errors. tests/integration/test_client.py runs it against the real one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgclf.cli import main
from tests.client.fake_server import FakeServer


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    for relative, content in [
        ("a.jpg", b"cat"),
        ("b/c.PNG", b"dog"),
        ("b/d.webp", b"bad bytes"),
        ("notes.txt", b"not an image suffix"),
        (".hidden/e.jpg", b"skipped"),
    ]:
        (tmp_path / relative).write_bytes(content)
    return tmp_path


FAKE_SERVED_BY = {  # what the fake server's Classify says (its batch items say nothing)
    "replica_id": "fake-replica",
    "device_kind": "neuron_core",
    "core_ids": [3],
    "backend": "cpu",
    "node_id": "",
}


def record(path: Path, label: str, served_by: object = None) -> dict[str, object]:
    """What --json and --jsonl print for an image the fake server classified."""
    return {
        "path": str(path),
        "model": "fake-model",
        "predictions": [{"label": label, "class_index": 0, "probability": 1.0}],
        "served_by": served_by,
    }


def test_one_image_prints_a_table_a_record_or_the_prototypes_json(
    capsys: pytest.CaptureFixture[str], fake: FakeServer, folder: Path
) -> None:
    image = folder / "a.jpg"
    code, out, err = run(capsys, "classify", str(image), "--target", fake.target)
    assert code == 0 and err == ""
    assert "a.jpg" in out and "fake-model" in out and "1. cat" in out and "100.00%" in out

    code, out, _ = run(capsys, "classify", str(image), "--json", "--target", fake.target)
    assert code == 0 and json.loads(out) == [
        record(image, "cat", FAKE_SERVED_BY)
    ]  # a list, even of one

    code, out, _ = run(capsys, "classify", str(image), "--jsonl", "--target", fake.target)
    assert code == 0 and [json.loads(line) for line in out.splitlines()] == [
        record(image, "cat", FAKE_SERVED_BY)
    ]

    argv = ["classify", str(image), "--prototype-json", "--target", fake.target]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and json.loads(out) == {"cat": 1.0}


def test_several_images_print_records_in_order_and_fail_on_a_bad_one(
    capsys: pytest.CaptureFixture[str], fake: FakeServer, folder: Path
) -> None:
    paths = [folder / p for p in ("b/c.PNG", "b/d.webp", "a.jpg")]
    for flag in ("--json", "--jsonl"):
        code, out, err = run(capsys, "classify", *map(str, paths), flag, "--target", fake.target)
        assert code == 1
        records = json.loads(out) if flag == "--json" else [json.loads(x) for x in out.splitlines()]
        first, failed, last = records
        assert first == record(paths[0], "dog") and last == record(paths[2], "cat")
        assert failed["path"] == str(paths[1]) and set(failed) == {"path", "error"}
        assert failed["error"]["code"] == "INVALID_ARGUMENT"
        assert failed["error"]["reason"] == "INVALID_IMAGE"
        assert "classified 2 of 3 images" in err and "1 failed" in err
        assert f"{paths[1]}: INVALID_ARGUMENT: image 1: cannot decode" in err

    argv = ["classify", *map(str, paths), "--prototype-json", "--target", fake.target]
    code, out, _ = run(capsys, *argv)
    first, failed, last = json.loads(out)
    assert first == {"dog": 1.0} and last == {"cat": 1.0} and "error" in failed


def test_a_failed_single_image_is_a_record_with_its_error(
    capsys: pytest.CaptureFixture[str], fake: FakeServer, folder: Path
) -> None:
    argv = ["classify", str(folder / "b/d.webp"), "--json", "--target", fake.target]
    code, out, _ = run(capsys, *argv)
    assert code == 1
    [failed] = json.loads(out)
    assert (
        failed["path"] == str(folder / "b/d.webp") and failed["error"]["code"] == "INVALID_ARGUMENT"
    )


def test_recursive_walks_image_files_in_order(
    capsys: pytest.CaptureFixture[str], fake: FakeServer, folder: Path
) -> None:
    argv = ["classify", "-r", str(folder), "--chunk-size", "2", "--target", fake.target]
    code, out, _ = run(capsys, *argv, "--json")
    assert code == 1
    walked = [str(folder / "a.jpg"), str(folder / "b/c.PNG"), str(folder / "b/d.webp")]
    assert [r["path"] for r in json.loads(out)] == walked
    assert [c.images for c in fake.servicer.calls_to("ClassifyBatch")] == [2, 1]

    code, out, _ = run(capsys, *argv, "--prototype-json")
    results = json.loads(out)  # keyed by path: the walk's order is not the arguments'
    assert list(results) == walked and results[walked[0]] == {"cat": 1.0}

    code, out, _ = run(capsys, "classify", "-r", str(folder / "b"), "--target", fake.target)
    assert code == 1
    assert "1. dog" in out and "FAILED INVALID_ARGUMENT" in out


def test_an_image_from_standard_input(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeServer,
    folder: Path,
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"owl")))
    code, out, _ = run(
        capsys, "classify", "-", str(folder / "a.jpg"), "--json", "--target", fake.target
    )
    assert code == 0
    assert [r["path"] for r in json.loads(out)] == ["-", str(folder / "a.jpg")]
    assert json.loads(out)[0]["predictions"][0]["label"] == "owl"
    code, _, err = run(capsys, "classify", "-", "-", "--target", fake.target)
    assert code == 2 and "'-' (standard input) may be given once" in err


def test_connection_options_before_or_after_the_command_and_headers(
    capsys: pytest.CaptureFixture[str], fake: FakeServer, folder: Path
) -> None:
    image = str(folder / "a.jpg")
    before = ["--target", fake.target, "-H", "x-tenant: blue", "classify", image]
    assert run(capsys, *before)[0] == 0
    after = ["classify", image, "--target", fake.target, "--header", "X-Trace:7"]
    assert run(capsys, *after)[0] == 0
    # Given after the command, an option replaces the value given before it.
    both = ["--target", "127.0.0.1:1", "classify", image, "--target", fake.target]
    assert run(capsys, *both)[0] == 0
    first, second, _ = fake.servicer.calls_to("Classify")
    assert first.metadata["x-tenant"] == "blue" and second.metadata["x-trace"] == "7"
    code, _, err = run(capsys, "-H", "no-colon", "health", "--target", fake.target)
    assert code == 2 and "expected KEY:VALUE" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import imgclf

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out == f"imgclf {imgclf.__version__}\n"
    assert imgclf.__version__ != "0+unknown"  # the installed distribution's


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["classify", "/no/such.jpg"], "/no/such.jpg: no such file or directory"),
        (["classify", "{folder}"], "is a folder; pass --recursive"),
        (["classify", "{folder}/a.jpg", "--model", "missing"], "NOT_FOUND: model 'missing'"),
        (["classify", "{folder}/b/d.webp"], "b/d.webp: INVALID_ARGUMENT: cannot decode"),
    ],
)
def test_errors_are_one_line_with_a_status(
    capsys: pytest.CaptureFixture[str],
    fake: FakeServer,
    folder: Path,
    argv: list[str],
    message: str,
) -> None:
    argv = [arg.replace("{folder}", str(folder)) for arg in argv]
    code, out, err = run(capsys, *argv, "--target", fake.target)
    assert code in (1, 2) and out == ""
    assert err.startswith("imgclf: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_server_that_is_down_is_exit_3(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, out, err = run(capsys, "health", "--target", "127.0.0.1:1", "--timeout", "3")
    assert code == 3 and out == ""
    assert err.startswith("imgclf: error: cannot reach an imgclf server at 127.0.0.1:1")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["classify", "{folder}/a.jpg", "--target", "{fake}"], 0),
        (["classify", "{folder}/a.jpg", "{folder}/b/c.PNG", "--target", "{fake}"], 0),
        (["classify", "{folder}/b/d.webp", "--target", "{fake}"], 1),  # the image failed
        (["classify", "{folder}/a.jpg", "{folder}/b/d.webp", "--target", "{fake}"], 1),
        (["classify", "{folder}/a.jpg", "--model", "missing", "--target", "{fake}"], 1),
        (["classify", "{folder}/nope.jpg", "--target", "{fake}"], 2),  # usage: no such file
        (["classify", "{folder}/a.jpg", "--top-k", "0", "--target", "{fake}"], 2),
        (["classify", "{folder}/a.jpg", "--target", "{dead}"], 3),
        (["classify", "{folder}/a.jpg", "{folder}/b/c.PNG", "--target", "{dead}"], 3),
        (["classify", "-r", "{folder}", "--target", "{dead}"], 3),
        (["models", "--target", "{dead}"], 3),
        (["health", "--target", "{dead}"], 3),
    ],
)
def test_each_documented_exit_status(
    capsys: pytest.CaptureFixture[str],
    fake: FakeServer,
    folder: Path,
    argv: list[str],
    expected: int,
) -> None:
    """0 success; 1 an image failed or the server refused; 2 usage; 3 unreachable in time."""
    names = {"{folder}": str(folder), "{fake}": fake.target, "{dead}": "127.0.0.1:1"}
    for placeholder, value in names.items():
        argv = [arg.replace(placeholder, value) for arg in argv]
    assert run(capsys, *argv, "--timeout", "3")[0] == expected


@pytest.mark.parametrize("images", [1, 2])
@pytest.mark.parametrize(
    ("failure", "expected"), [("RESOURCE_EXHAUSTED", 1), ("INTERNAL", 1), ("DEADLINE", 3)]
)
def test_exit_status_when_the_server_fails_the_call(
    capsys: pytest.CaptureFixture[str],
    fake: FakeServer,
    folder: Path,
    failure: str,
    expected: int,
    images: int,
) -> None:
    import grpc

    files = [str(folder / "a.jpg"), str(folder / "b" / "c.PNG")][:images]
    if failure == "DEADLINE":
        fake.servicer.delay_s = 2.0
        code = run(capsys, "classify", *files, "--target", fake.target, "--timeout", "0.5")[0]
    else:
        fake.servicer.fail_next = [grpc.StatusCode[failure]] * 20
        code = run(capsys, "classify", *files, "--target", fake.target)[0]
    assert code == expected


def test_a_call_failing_mid_stream_stops_with_a_summary(
    capsys: pytest.CaptureFixture[str], fake: FakeServer, folder: Path
) -> None:
    import grpc

    fake.servicer.fail_next = [grpc.StatusCode.INTERNAL]
    code, _, err = run(capsys, "classify", "-r", str(folder), "--target", fake.target)
    assert code == 1
    assert "stopped after 0 of 3 images: injected INTERNAL" in err


def test_models_and_health(capsys: pytest.CaptureFixture[str], fake: FakeServer) -> None:
    code, out, _ = run(capsys, "models", "--target", fake.target)
    assert code == 0
    assert out.splitlines()[0].split() == [
        "MODEL",
        "VERSION",
        "INPUT",
        "CLASSES",
        "BACKEND",
        "DEVICE",
        "REPLICAS",
        "MAX",
        "BATCH",
    ]
    assert "fake-model (default)" in out and "224x224" in out and "256 images" in out

    code, out, _ = run(capsys, "models", "--json", "--target", fake.target)
    assert json.loads(out)["limits"]["max_images_per_batch"] == 256

    assert run(capsys, "health", "--target", fake.target)[:2] == (0, "SERVING\n")
    assert run(capsys, "health", "--service", "lite0", "--target", fake.target)[0] == 0
    assert fake.servicer.health_services[-2:] == ["", "lite0"]
    fake.servicer.health_status = 2
    assert run(capsys, "health", "--target", fake.target)[:2] == (1, "NOT_SERVING\n")


def test_health_wait_polls_until_serving_or_the_time_is_up(
    capsys: pytest.CaptureFixture[str], fake: FakeServer
) -> None:
    import threading

    fake.servicer.health_status = 2
    threading.Timer(1.5, lambda: setattr(fake.servicer, "health_status", 1)).start()
    code, out, _ = run(capsys, "health", "--wait", "30", "--target", fake.target)
    assert (code, out) == (0, "SERVING\n")
    assert len(fake.servicer.health_services) >= 2  # polled, not asked once

    fake.servicer.health_status = 2
    assert run(capsys, "health", "--wait", "1.5", "--target", fake.target)[:2] == (
        1,
        "NOT_SERVING\n",
    )
    # Unreachable meanwhile is not an error until the time is up; then it is exit 3.
    code, _, err = run(capsys, "health", "--wait", "1.5", "--target", "127.0.0.1:1")
    assert code == 3 and "cannot reach" in err


def test_the_progress_line_is_drawn_only_on_a_terminal() -> None:
    import io

    from imgclf.cli.progress import Progress

    shown, hidden = io.StringIO(), io.StringIO()
    for stream, enabled in ((shown, True), (hidden, False)):
        progress = Progress(stream, enabled)
        progress.update(ok=True)
        progress.update(ok=False)
        progress.clear()
        assert (progress.done, progress.failed) == (2, 1)
    assert "1 images" in shown.getvalue() and shown.getvalue().endswith("\r\033[K")
    assert hidden.getvalue() == ""
