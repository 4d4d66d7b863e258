"""The commands over saved runs: ``assign`` (new users to a model's segments) and ``compare``."""
from __future__ import annotations

import argparse

from ..outputs import check_output, write_output_file, write_parquet
from .exit_codes import EXIT_OK
from .options import CommandFactory, add_backend
from .output import Progress


def _cmd_assign(args: argparse.Namespace) -> int:
    from ..assign import assign_from_model, every_user
    from ..registry import get_backend

    inputs = {"--model": args.model, "--data": args.data}
    check_output(args.out, kind="assignments", force=args.force, inputs=inputs)
    backend = get_backend(args.backend)
    with Progress(args) as progress:
        model, assignment = assign_from_model(args.model, args.data, backend, progress=progress,
                                              min_orders=args.min_orders)
    out = write_parquet(every_user(assignment), args.out, kind="assignments", force=args.force,
                        inputs=inputs, index=False)
    print(f"{assignment.summary(model.min_orders)}, to the segments of {args.model}; wrote {out}")
    assigned = assignment.users
    for (segment, persona), size in assigned.groupby(["segment", "persona"]).size().items():
        print(f"  {segment}: {persona:<37} {size:>9,}")
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    from ..compare import compare_runs

    inputs = {"RUN_A": args.run_a, "RUN_B": args.run_b}
    if args.out:
        check_output(args.out, kind="comparison", force=args.force, inputs=inputs)
    comparison = compare_runs(args.run_a, args.run_b, force=args.force)
    print(comparison.summary())
    if args.out:
        out = write_output_file(args.out, lambda path: comparison.to_long().to_csv(path, index=False),
                                kind="comparison", force=args.force, inputs=inputs)
        print(f"wrote {out}")
    return EXIT_OK


def register(command: CommandFactory) -> None:
    """Add ``assign`` and ``compare`` to the parser."""
    p = command("assign", "segment new users with a saved model (no refit)",
                "gpuseg assign --model runs/2026-11 --data data/december --out december.parquet",
                _cmd_assign)
    p.add_argument("--model", required=True,
                   help="run directory (or its model/ folder) of the run whose segments to use")
    p.add_argument("--data", required=True, help="Instacart-layout folder, or 'kaggle'")
    p.add_argument("--out", required=True,
                   help="parquet file to write, one row per input user: user_id, segment, "
                        "persona, membership, second_segment, second_membership, provisional, "
                        "excluded (why a user has no segment; empty where it has one)")
    p.add_argument("--min-orders", type=int, default=None, metavar="N",
                   help="assign shoppers with at least N orders with products (default: the "
                        "model's own min_orders); those below the model's are flagged "
                        "provisional, their membership empty unless the model measured shoppers "
                        "with that many orders")
    p.add_argument("--force", action="store_true",
                   help="replace an existing assignments file gpuseg wrote")
    add_backend(p)

    p = command("compare", "segment migration between two runs: matrix, ARI, users who came and went",
                "gpuseg compare runs/2026-10 runs/2026-11 --out migration.csv",
                _cmd_compare)
    p.add_argument("run_a", metavar="RUN_A", help="earlier run directory")
    p.add_argument("run_b", metavar="RUN_B", help="later run directory")
    p.add_argument("--out", help="CSV to write, one row per (A segment, B segment): users and share")
    p.add_argument("--force", action="store_true",
                   help="replace an existing comparison CSV gpuseg wrote, and compare runs "
                        "whose inputs look unrelated (another feature set, taxonomy or product "
                        "catalog), which is otherwise refused")
