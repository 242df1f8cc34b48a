"""`imgclf classify`: one image through Classify; several, or folders, streamed through
ClassifyBatch with a progress line and a summary. Output: a table per image, `--json` (a list
of records of one shape), `--jsonl` (a record per line as results arrive), or
`--prototype-json` (the eks-neuron prototype's {label: probability})."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imgclf.cli import inputs
from imgclf.cli.progress import Progress
from imgclf.cli.render import (
    item_record,
    item_text,
    prototype_json,
    report_error,
)
from imgclf.client import ClassifierClient
from imgclf.errors import ImgclfError, InvalidArgument, error_for
from imgclf.results import BatchItem, ItemError

EXIT_OK, EXIT_FAILED = 0, 1
TABLE, JSON, JSONL, PROTOTYPE = "table", "json", "jsonl", "prototype"


def run_classify(client: ClassifierClient, args: argparse.Namespace) -> int:
    sources = inputs.sources(args.paths, args.recursive, sys.stdin.buffer)
    if len(sources) == 1 and not any(Path(raw).is_dir() for raw in args.paths):
        return _classify_one(client, sources[0], args)
    return _classify_many(client, sources, args)


def _classify_one(client: ClassifierClient, source: inputs.Source, args: argparse.Namespace) -> int:
    try:
        item: BatchItem = client.classify(source.image, top_k=args.top_k, model=args.model)
    except InvalidArgument as exc:
        if args.output == TABLE:
            return report_error(f"{source.name}: {exc}", EXIT_FAILED)
        item = ItemError(0, exc.code, exc.reason or "", exc.message)
    if args.output == PROTOTYPE:  # one image: its object, not a list
        print(json.dumps(prototype_json(item), indent=2))
    elif not _streamed(args.output, source.name, item):
        print(json.dumps([item_record(source.name, item)], indent=2))
    return EXIT_FAILED if isinstance(item, ItemError) else EXIT_OK


def _classify_many(
    client: ClassifierClient, sources: list[inputs.Source], args: argparse.Namespace
) -> int:
    progress = Progress(sys.stderr, enabled=sys.stderr.isatty())
    collected: list[tuple[str, BatchItem]] = []
    failures: list[tuple[str, ItemError]] = []
    items = client.classify_iter(
        [source.image for source in sources],
        chunk_size=args.chunk_size,
        top_k=args.top_k,
        model=args.model,
    )
    try:
        for source, item in zip(sources, items, strict=True):
            progress.update(item.ok)
            if isinstance(item, ItemError):
                failures.append((source.name, item))
            progress.clear()
            if not _streamed(args.output, source.name, item):
                collected.append((source.name, item))
    except ImgclfError as exc:
        progress.clear()
        if progress.done:
            _summary(progress, failures)
        # The same kind of error (so the exit status stays the one documented for it).
        raise error_for(
            exc.code,
            f"stopped after {progress.done} of {len(sources)} images: {exc.message}",
            exc.reason,
            exc.request_id,
        ) from exc
    progress.clear()
    if args.output == JSON:
        print(json.dumps([item_record(name, item) for name, item in collected], indent=2))
    elif args.output == PROTOTYPE:
        print(json.dumps(_prototype_output(collected, args.recursive), indent=2))
    _summary(progress, failures)
    return EXIT_FAILED if failures else EXIT_OK


def _streamed(output: str, name: str, item: BatchItem) -> bool:
    """Print `item` now if `output` is a per-image format (a table, JSON lines); False if it
    waits for the whole list."""
    if output == TABLE:
        print(item_text(name, item), flush=True)
    elif output == JSONL:
        print(json.dumps(item_record(name, item)), flush=True)
    else:
        return False
    return True


def _prototype_output(results: list[tuple[str, BatchItem]], by_path: bool) -> object:
    """A list in argument order, like the prototype's batch endpoint; keyed by path when
    folders were walked, since their order is the walk's."""
    if by_path:
        return {name: prototype_json(item) for name, item in results}
    return [prototype_json(item) for _, item in results]


def _summary(progress: Progress, failures: list[tuple[str, ItemError]]) -> None:
    print(
        f"classified {progress.done - progress.failed} of {progress.done} images in "
        f"{progress.elapsed():.1f} s ({progress.rate():.1f} img/s); {progress.failed} failed",
        file=sys.stderr,
    )
    for name, error in failures:
        print(f"  {name}: {error.code.name}: {error.message}", file=sys.stderr)
