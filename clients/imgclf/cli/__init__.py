"""The `imgclf` command: classify images, list models, check health.

Exit status: 0 success; 1 an image failed, the server is not serving, or it refused the call;
2 a usage error (bad option, missing file); 3 the server could not be reached in time.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from imgclf.cli import inputs
from imgclf.cli.classify import run_classify
from imgclf.cli.render import models_table, report_error, to_json
from imgclf.client import ClassifierClient
from imgclf.errors import DeadlineExceeded, ImgclfError, Unavailable
from imgclf.options import DEFAULT_TARGET, DEFAULT_TIMEOUT_S, TARGET_ENV, TLS, default_target
from imgclf.results import HealthStatus

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


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
    connection = argparse.ArgumentParser(add_help=False)
    group = connection.add_argument_group("connection")
    group.add_argument(
        "--target",
        default=default_target(None),
        help=f"server host:port or gRPC target (default: ${TARGET_ENV} or {DEFAULT_TARGET})",
    )
    group.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds each call may take (default: %(default)s)",
    )
    group.add_argument("--tls", action="store_true", help="use TLS (gRPC's bundled roots)")
    group.add_argument("--ca-cert", help="PEM file of the CA to trust (implies --tls)")
    group.add_argument("--cert", help="PEM client certificate for mutual TLS (implies --tls)")
    group.add_argument("--key", help="PEM private key of --cert")
    group.add_argument("--server-name", help="name to check the server certificate against")
    group.add_argument("--application", help="Ray Serve application name, if several")

    parser = argparse.ArgumentParser(
        prog="imgclf", description="Classify images with an imgclf server."
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    classify = commands.add_parser(
        "classify", parents=[connection], help="classify image files or folders"
    )
    classify.add_argument("paths", nargs="+", metavar="IMAGE", help="image files (or folders)")
    classify.add_argument(
        "-r", "--recursive", action="store_true", help="classify every image under folders"
    )
    classify.add_argument("--top-k", type=_positive_int, help="predictions per image (default 5)")
    classify.add_argument("--model", help="model name (default: the server's default model)")
    classify.add_argument(
        "--json",
        action="store_true",
        help="print {label: probability} per image, as the eks-neuron prototype returned",
    )
    classify.add_argument(
        "--chunk-size", type=_positive_int, default=32, help="images per call (default 32)"
    )
    classify.set_defaults(run=run_classify)

    models = commands.add_parser("models", parents=[connection], help="list the served models")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(run=_run_models)

    health = commands.add_parser("health", parents=[connection], help="is the server serving?")
    health.set_defaults(run=_run_health)
    return parser


def connect(args: argparse.Namespace) -> ClassifierClient:
    tls = None
    if args.tls or args.ca_cert or args.cert or args.server_name:
        if bool(args.cert) != bool(args.key):
            raise SystemExit(report_error("--cert and --key go together", EXIT_USAGE))
        tls = TLS(args.ca_cert, args.cert, args.key, args.server_name)
    return ClassifierClient(
        args.target, tls=tls, timeout=args.timeout, application=args.application
    )


def _run_models(client: ClassifierClient, args: argparse.Namespace) -> int:
    models = client.models()
    print(to_json(models) if args.json else models_table(models))
    return EXIT_OK


def _run_health(client: ClassifierClient, args: argparse.Namespace) -> int:
    status = client.health()
    print(status.value)
    return EXIT_OK if status is HealthStatus.SERVING else EXIT_FAILED


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
