"""The `imgclf` command: classify images, list models, check health.

Connection options go before or after the command (`imgclf --target h:9000 health` or
`imgclf health --target h:9000`).

Exit status: 0 success; 1 an image failed, the server is not serving, or it refused the call;
2 a usage error (bad option, missing file); 3 the server could not be reached in time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from imgclf import __version__
from imgclf.cli import inputs
from imgclf.cli.classify import run_classify
from imgclf.cli.render import models_table, report_error, to_json
from imgclf.client import ClassifierClient
from imgclf.errors import DeadlineExceeded, ImgclfError, Unavailable
from imgclf.options import DEFAULT_TARGET, DEFAULT_TIMEOUT_S, TARGET_ENV, TLS, default_target
from imgclf.results import HealthStatus

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
WAIT_POLL_S = 1.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with connect(args) as client:
            code: int = args.run(client, args)
            return code
    except inputs.InputError as exc:
        return report_error(str(exc), EXIT_USAGE)
    except DeadlineExceeded as exc:
        return report_error(
            f"no answer from {args.target} within --timeout {args.timeout} s ({exc})",
            EXIT_UNREACHABLE,
        )
    except Unavailable as exc:
        if exc.reason:  # the server answered: it is up, but could not serve the call
            return report_error(str(exc), EXIT_FAILED)
        return report_error(
            f"cannot reach an imgclf server at {args.target} ({exc}); start one with "
            "`make serve`, or pass --target / set IMGCLF_TARGET",
            EXIT_UNREACHABLE,
        )
    except ImgclfError as exc:
        return report_error(str(exc), EXIT_FAILED)
    except OSError as exc:
        return report_error(f"{exc.filename or ''}: {exc.strerror or exc}", EXIT_USAGE)
    except ValueError as exc:
        return report_error(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return report_error("interrupted", 130)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgclf",
        description="Classify images with an imgclf server.",
        parents=[_connection_options(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"imgclf {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    # The same options after the command; they override those before it only when given.
    after = _connection_options(defaults=False)

    classify = commands.add_parser(
        "classify", parents=[after], help="classify image files, folders or stdin"
    )
    classify.add_argument(
        "paths", nargs="+", metavar="IMAGE", help="image files, folders, or - for standard input"
    )
    classify.add_argument(
        "-r", "--recursive", action="store_true", help="classify every image under folders"
    )
    classify.add_argument("--top-k", type=_positive_int, help="predictions per image (default 5)")
    classify.add_argument("--model", help="model name (default: the server's default model)")
    output = classify.add_mutually_exclusive_group()
    output.set_defaults(output="table")
    output.add_argument(
        "--json",
        action="store_const",
        dest="output",
        const="json",
        help='a JSON list, one record per image: {"path", "model", "predictions", "served_by"} '
        'or {"path", "error"}',
    )
    output.add_argument(
        "--jsonl",
        action="store_const",
        dest="output",
        const="jsonl",
        help="the same records, one JSON object per line as results arrive",
    )
    output.add_argument(
        "--prototype-json",
        action="store_const",
        dest="output",
        const="prototype",
        help="{label: probability} per image, as the eks-neuron prototype returned",
    )
    classify.add_argument(
        "--chunk-size", type=_positive_int, default=32, help="images per call (default 32)"
    )
    classify.set_defaults(run=run_classify)

    models = commands.add_parser("models", parents=[after], help="list the served models")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(run=_run_models)

    health = commands.add_parser("health", parents=[after], help="is the server serving?")
    health.add_argument(
        "--service", default="", metavar="MODEL", help="one model's health (default: the server)"
    )
    health.add_argument(
        "--wait",
        type=_positive_float,
        metavar="SECONDS",
        help="poll until SERVING, for at most this long (unreachable meanwhile is not an error)",
    )
    health.set_defaults(run=_run_health)
    return parser


def _connection_options(defaults: bool) -> argparse.ArgumentParser:
    """The connection options; without `defaults` they leave the value parsed before the
    command in place unless given again."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("connection")
    group.add_argument(
        "--target",
        default=default(default_target(None)),
        help=f"server host:port or gRPC target (default: ${TARGET_ENV} or {DEFAULT_TARGET})",
    )
    group.add_argument(
        "--timeout",
        type=_positive_float,
        default=default(DEFAULT_TIMEOUT_S),
        help=f"seconds each call may take (default: {DEFAULT_TIMEOUT_S})",
    )
    group.add_argument(
        "--tls", action="store_true", default=default(False), help="use TLS (gRPC's bundled roots)"
    )
    group.add_argument(
        "--ca-cert", default=default(None), help="PEM file of the CA to trust (implies --tls)"
    )
    group.add_argument(
        "--cert",
        default=default(None),
        help="PEM client certificate for mutual TLS (implies --tls)",
    )
    group.add_argument("--key", default=default(None), help="PEM private key of --cert")
    group.add_argument(
        "--server-name", default=default(None), help="name to check the server certificate against"
    )
    group.add_argument(
        "--application", default=default(None), help="Ray Serve application name, if several"
    )
    group.add_argument(
        "-H",
        "--header",
        dest="headers",
        action="append",
        type=_header,
        default=default([]),
        metavar="KEY:VALUE",
        help="gRPC metadata sent with every call (repeatable)",
    )
    return options


def connect(args: argparse.Namespace) -> ClassifierClient:
    tls = None
    if args.tls or args.ca_cert or args.cert or args.server_name:
        if bool(args.cert) != bool(args.key):
            raise SystemExit(report_error("--cert and --key go together", EXIT_USAGE))
        tls = TLS(args.ca_cert, args.cert, args.key, args.server_name)
    return ClassifierClient(
        args.target,
        tls=tls,
        timeout=args.timeout,
        application=args.application,
        metadata=args.headers,
    )


def _run_models(client: ClassifierClient, args: argparse.Namespace) -> int:
    models = client.models()
    print(to_json(models) if args.json else models_table(models))
    return EXIT_OK


def _run_health(client: ClassifierClient, args: argparse.Namespace) -> int:
    if args.wait is None:
        status = client.health(service=args.service)
    else:
        status = _wait_serving(client, args.service, args.wait)
    print(status.value)
    return EXIT_OK if status is HealthStatus.SERVING else EXIT_FAILED


def _wait_serving(client: ClassifierClient, service: str, wait_s: float) -> HealthStatus:
    """Poll every WAIT_POLL_S until SERVING or `wait_s` passed; the last status, or the last
    error once the time is up (an unreachable server is expected while it starts)."""
    deadline = time.monotonic() + wait_s
    while True:
        left = deadline - time.monotonic()
        try:
            status = client.health(service=service, timeout=max(0.1, min(left, WAIT_POLL_S)))
            if status is HealthStatus.SERVING or left <= 0:
                return status
        except (Unavailable, DeadlineExceeded):
            if left <= 0:
                raise
        time.sleep(max(0.0, min(WAIT_POLL_S, deadline - time.monotonic())))


def _header(text: str) -> tuple[str, str]:
    key, sep, value = text.partition(":")
    key = key.strip().lower()
    if not sep or not key or not all(c.isalnum() or c in "-_." for c in key):
        raise argparse.ArgumentTypeError(
            f"expected KEY:VALUE with a key of letters, digits, '-', '_' or '.'; got {text!r}"
        )
    return key, value.strip()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0; got {value}")
    return value
