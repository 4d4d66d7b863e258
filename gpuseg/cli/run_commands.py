"""The segmentation commands: ``run`` and ``demo``."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ..config import BackendName, PipelineConfig
from ..errors import GpusegError
from ..outputs import check_output
from .exit_codes import EXIT_OK
from .options import CommandFactory, add_backend, add_pipeline_options, config_from
from .output import Progress, check_cluster, print_summary, tell, timed, write_run

if TYPE_CHECKING:
    from ..backend import Backend

#: Fewer synthetic shoppers leave too few after the min-orders filter for every stage to run.
DEMO_MIN_USERS = 500
#: Users the demo fits its UMAP layout on where the backend samples (the CPU).
DEMO_UMAP_FIT_SAMPLE = 2_500


def _prepared_backend(name: str) -> Backend:
    """The run's backend, its background preparation started (see ``Backend.prepare``).

    Called before the pipeline is imported (about 1.2 s on two cores) or synthetic data is
    made, so that a first run's background compile of the map's kernels starts that much
    sooner and the map waits less for it.
    """
    from ..registry import get_backend

    backend = get_backend(name)
    backend.prepare(embed=True)
    return backend


def _cmd_run(args: argparse.Namespace) -> int:
    check_output(args.out, kind="run", force=args.force, inputs={"--data": args.data})
    config = config_from(args)
    check_cluster(config)
    backend = _prepared_backend(config.backend)
    from ..pipeline import segment

    with Progress(args) as progress:
        result = segment(args.data, config, backend=backend, progress=progress)
        out = write_run(result, args.out, force=args.force, progress=progress)
    print_summary(result, out)
    return EXIT_OK


def demo_config(backend: Backend, seed: int) -> PipelineConfig:
    """The demo's pipeline: the defaults, with a demo-sized UMAP fit where the backend samples.

    On two CPU cores a umap-learn layout fitted on tens of thousands of
    shoppers, plus its numba compilation, would take most of the two-minute
    budget; a fit on :data:`DEMO_UMAP_FIT_SAMPLE` users shapes the layout and
    every other shopper is placed with the fitted model's transform, so the
    map still shows everyone and the report says how it was made. A backend that fits every
    user (the GPU) keeps ``"auto"``. A function of its own so that tests can
    run the whole demo with lighter settings.
    """
    return PipelineConfig(backend=cast(BackendName, backend.name), seed=seed,
                          umap_fit_sample="auto" if backend.fits_every_user
                          else DEMO_UMAP_FIT_SAMPLE)


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.users < DEMO_MIN_USERS:
        raise GpusegError(f"--users must be at least {DEMO_MIN_USERS:,} for the demo "
                          f"(got {args.users})")
    out = Path(args.out)
    data_dir = out.with_name(f"{out.name}-data")
    check_output(out, kind="run", force=args.force)
    check_output(data_dir, kind="dataset", force=args.force, label="--out's data folder")
    backend = _prepared_backend(args.backend)
    from ..data.synth import generate_instacart, write_instacart
    from ..pipeline import segment

    with Progress(args) as progress:
        tell(progress, "synthetic data")
        with timed("synthetic data"):
            data = generate_instacart(args.users, seed=args.seed, separation="strong")
            write_instacart(data, data_dir, fmt="parquet", overwrite=args.force)
        result = segment(data_dir, demo_config(backend, args.seed), backend=backend,
                         progress=progress)
        out = write_run(result, out, force=args.force, progress=progress)
    print_summary(result, out)
    print(f"synthetic data: {data_dir}")
    print(f"report: {out / 'report.html'}")
    return EXIT_OK


def register(command: CommandFactory) -> None:
    """Add ``run`` and ``demo`` to the parser."""
    p = command("run", "segment shoppers and write a run directory",
                "gpuseg run --data data/synth --out runs/2026-11 --k auto --backend cpu",
                _cmd_run)
    p.add_argument("--data", required=True, help="Instacart-layout folder, or 'kaggle'")
    p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument("--force", action="store_true",
                   help="replace an existing run directory gpuseg wrote")
    add_pipeline_options(p)

    p = command("demo", "generate synthetic shoppers, segment them and write the report "
                        "(the data goes to RUN_DIR-data)",
                "gpuseg demo --out gpuseg-demo --users 50000   # then open gpuseg-demo/report.html",
                _cmd_demo)
    p.add_argument("--out", default="gpuseg-demo", metavar="RUN_DIR",
                   help="run directory to create; the synthetic data is written beside it as "
                        "RUN_DIR-data (default: gpuseg-demo)")
    p.add_argument("--users", type=int, default=50_000,
                   help=f"synthetic shoppers, at least {DEMO_MIN_USERS} (default: 50000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the run (default: 0)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing run directory and data folder gpuseg wrote")
    add_backend(p)
