"""`imgclf classify`: one image through Classify; several, or folders, streamed through
ClassifyBatch with a progress line and a summary."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imgclf.cli import inputs
from imgclf.cli.progress import Progress
from imgclf.cli.render import classification_table, item_json, item_text, report_error
from imgclf.client import ClassifierClient
from imgclf.errors import ImgclfError, InvalidArgument, error_for
from imgclf.results import BatchItem, ItemError

EXIT_OK, EXIT_FAILED = 0, 1


def run_classify(client: ClassifierClient, args: argparse.Namespace) -> int:
    paths = inputs.check_paths(args.paths, args.recursive)
    if len(paths) == 1 and not paths[0].is_dir():
        return _classify_one(client, paths[0], args)
    return _classify_many(client, paths, args)


def _classify_one(client: ClassifierClient, path: Path, args: argparse.Namespace) -> int:
    try:
        result = client.classify(path, top_k=args.top_k, model=args.model)
    except InvalidArgument as exc:
        return report_error(f"{path}: {exc}", EXIT_FAILED)
    print(
        json.dumps(result.as_dict(), indent=2)
        if args.json
        else classification_table(str(path), result)
    )
    return EXIT_OK


def _classify_many(client: ClassifierClient, paths: list[Path], args: argparse.Namespace) -> int:
    files = list(inputs.image_files(paths)) if args.recursive else paths
    progress = Progress(sys.stderr, enabled=sys.stderr.isatty())
    results: list[tuple[Path, BatchItem]] = []
    failures: list[tuple[Path, ItemError]] = []
    items = client.classify_iter(
        files, chunk_size=args.chunk_size, top_k=args.top_k, model=args.model
    )
    try:
        for path, item in zip(files, items, strict=True):
            progress.update(item.ok)
            if isinstance(item, ItemError):
                failures.append((path, item))
            if args.json:
                results.append((path, item))
            else:
                progress.clear()
                print(item_text(str(path), item), flush=True)
    except ImgclfError as exc:
        progress.clear()
        if progress.done:
            _summary(progress, failures)
        # The same kind of error (so the exit status stays the one documented for it).
        raise error_for(
            exc.code,
            f"stopped after {progress.done} of {len(files)} images: {exc.message}",
            exc.reason,
            exc.request_id,
        ) from exc
    progress.clear()
    if args.json:
        print(json.dumps(_json_output(results, args.recursive), indent=2))
    _summary(progress, failures)
    return EXIT_FAILED if failures else EXIT_OK


def _json_output(results: list[tuple[Path, BatchItem]], by_path: bool) -> object:
    """A list in argument order, like the prototype's batch endpoint; keyed by path when
    folders were walked, since their order is the walk's."""
    if by_path:
        return {str(path): item_json(item) for path, item in results}
    return [item_json(item) for _, item in results]


def _summary(progress: Progress, failures: list[tuple[Path, ItemError]]) -> None:
    print(
        f"classified {progress.done - progress.failed} of {progress.done} images in "
        f"{progress.elapsed():.1f} s ({progress.rate():.1f} img/s); {progress.failed} failed",
        file=sys.stderr,
    )
    for path, error in failures:
        print(f"  {path}: {error.code.name}: {error.message}", file=sys.stderr)
