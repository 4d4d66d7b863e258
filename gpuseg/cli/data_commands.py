"""The data commands: ``synth``, ``partition``, ``download`` and ``features``."""
from __future__ import annotations

import argparse
import os

from ..config import PipelineConfig
from ..errors import GpusegError
from ..outputs import check_output, write_parquet
from .exit_codes import EXIT_OK
from .options import CommandFactory, add_backend, add_config_option, add_partition_cluster_options
from .output import check_cluster


def _cmd_synth(args: argparse.Namespace) -> int:
    from ..data.synth import generate_instacart, write_instacart, write_partitioned

    check_output(args.out, kind="dataset", force=args.force)
    if args.partitions is not None:
        if args.format == "csv":
            raise GpusegError("--partitions writes parquet partitions; drop --format csv")
        out = write_partitioned(args.users, args.out, partitions=args.partitions, seed=args.seed,
                                separation=args.separation, overwrite=args.force)
        print(f"wrote {args.users:,} synthetic users ({args.separation} separation) to {out} "
              f"in {args.partitions:,} partitions")
        return EXIT_OK
    data = generate_instacart(args.users, seed=args.seed, separation=args.separation)
    out = write_instacart(data, args.out, fmt=args.format or "csv", overwrite=args.force)
    print(f"wrote {args.users:,} synthetic users ({args.separation} separation) to {out}")
    return EXIT_OK


def _cmd_partition(args: argparse.Namespace) -> int:
    from ..data.partitions.manifest import read_manifest
    from ..distributed.shuffle import repartition

    check_output(args.out, kind="dataset", force=args.force, inputs={"--data": args.data})
    # Without --workers or --scheduler, a local cluster of one worker per core.
    unset = args.workers is None and args.scheduler is None
    workers = (os.cpu_count() or 1) if unset else args.workers
    config = PipelineConfig(backend="cpu", workers=workers, scheduler=args.scheduler,
                            worker_memory=args.worker_memory)
    check_cluster(config)
    out = repartition(args.data, args.out, partitions=args.partitions, config=config,
                      overwrite=args.force)
    written = read_manifest(out)
    count = args.partitions if written is None else len(written.parts)
    skipped = "" if count == args.partitions else (
        f" ({args.partitions - count:,} of the {args.partitions:,} buckets held no user)")
    print(f"wrote {args.data} to {out} in {count:,} partitions{skipped}")
    return EXIT_OK


def _cmd_download(args: argparse.Namespace) -> int:
    from ..data.kaggle import download_instacart

    path = download_instacart(competition=args.competition, force=args.force)
    print(path)
    return EXIT_OK


def _cmd_features(args: argparse.Namespace) -> int:
    from ..data import load_instacart
    from ..features import compute_features
    from ..registry import get_backend
    from ..resources import check_features
    from ..timing import StageTimer

    inputs = {"--data": args.data}
    check_output(args.out, kind="features", force=args.force, inputs=inputs)
    backend = get_backend(args.backend)
    timer = StageTimer(backend)
    with timer.stage("load"):
        data = load_instacart(args.data, backend=backend)
    with timer.stage("features"):
        check_features(data, backend)
        table = backend.to_host(compute_features(data, backend, min_orders=args.min_orders).table)
    out = write_parquet(table, args.out, kind="features", force=args.force, inputs=inputs)
    print(f"wrote features of {len(table):,} users x {table.shape[1]} columns to {out}")
    return EXIT_OK


def register(command: CommandFactory) -> None:
    """Add the data commands to the parser."""
    p = command("synth", "write a synthetic Instacart-layout data set with planted personas",
                "gpuseg synth --users 50000 --seed 7 --out data/synth --separation realistic",
                _cmd_synth)
    p.add_argument("--users", type=int, default=50_000, help="number of shoppers (default: 50000)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    p.add_argument("--out", required=True, help="folder to write (Kaggle layout + personas_truth.csv)")
    p.add_argument("--format", choices=("csv", "parquet"), default=None,
                   help="file format (default: csv; parquet with --partitions)")
    p.add_argument("--separation", choices=("strong", "realistic"), default="strong",
                   help="strong: personas recoverable; realistic: overlapping like real shoppers "
                        "(default: strong)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing data set folder gpuseg wrote")
    p.add_argument("--partitions", type=int, default=None, metavar="P",
                   help="write the partitioned layout (P parquet partitions of whole users) "
                        "block by block, out of core; the same rows as without it")

    p = command("partition", "rewrite a data set as partitions of whole users, for runs across "
                             "Dask workers",
                "gpuseg partition --data data/instacart --out data/instacart-parts "
                "--partitions 64 --workers 2",
                _cmd_partition)
    p.add_argument("--data", required=True, help="any accepted input folder (CSV, parquet, ...)")
    p.add_argument("--out", required=True, help="folder to write (the partitioned layout)")
    p.add_argument("--partitions", type=int, required=True, metavar="P",
                   help="number of partitions (users are bucketed by user_id)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing data set folder gpuseg wrote")
    add_partition_cluster_options(p)

    p = command("download", "download the Instacart data set from Kaggle (needs Kaggle credentials)",
                "gpuseg download && gpuseg run --data kaggle --out runs/instacart",
                _cmd_download)
    p.add_argument("--competition", action="store_true",
                   help="fetch the competition files (rules must be accepted on Kaggle) instead of "
                        "the public dataset")
    p.add_argument("--force", action="store_true", help="download again even if cached")

    p = command("features", "compute the per-user feature table",
                "gpuseg features --data data/synth --out features.parquet --min-orders 5",
                _cmd_features)
    p.add_argument("--data", required=True, help="Instacart-layout folder, or 'kaggle'")
    p.add_argument("--out", required=True, help="parquet file to write (index user_id)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing features file gpuseg wrote")
    add_config_option(p, "min_orders")
    add_backend(p)
