"""Markdown table and PNG chart of a benchmark report (results of :mod:`benchmarks.suite`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.suite import STAGES

STAGE_ORDER = (*STAGES, "run_total")


def _fmt(summary: dict[str, float] | None) -> str:
    if summary is None:
        return "-"
    if summary["n"] == 1:
        return f"{summary['median']:.2f}"
    return f"{summary['median']:.2f} ({summary['min']:.2f}-{summary['max']:.2f})"


def markdown_table(report: dict[str, Any]) -> str:
    """Seconds per stage (median, min-max) for each size and backend, then agreement and peers."""
    lines = [f"# gpuseg benchmark, {report['date']}", ""]
    for name, device in report["devices"].items():
        lines.append(f"- `{name}`: {device}")
    lines += ["", f"Medians of {report['repeats']} run(s), seconds (min-max); synthetic "
              "`realistic` data; `run_total` = parquet cache to report.", ""]
    columns = [(size, name) for size, entry in report["sizes"].items() for name in entry["backends"]]
    lines.append("| stage | " + " | ".join(f"{int(s):,} users, {n}" for s, n in columns) + " |")
    lines.append("| --- |" + " ---: |" * len(columns))
    for stage in STAGE_ORDER:
        cells = [_fmt(report["sizes"][s]["backends"][n]["seconds"].get(stage)) for s, n in columns]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    peak = [f"{report['sizes'][s]['backends'][n]['peak_host_gib']:.2f}" for s, n in columns]
    lines.append("| peak host memory (GiB) | " + " | ".join(peak) + " |")
    quality = [report["sizes"][s]["backends"][n] for s, n in columns]
    lines.append("| silhouette | " + " | ".join(f"{q['silhouette']:.3f}" for q in quality) + " |")
    lines.append("| UMAP trustworthiness | " + " | ".join(
        f"{q['trustworthiness']:.3f}" for q in quality) + " |")
    if any("umap_fitted_users" in q for q in quality):
        lines.append("| UMAP layout fitted on (users) | " + " | ".join(
            f"{q['umap_fitted_users']:,}" if "umap_fitted_users" in q else "-" for q in quality)
            + " |")
    gpu_peak = [report["sizes"][s]["backends"][n]["peak_gpu_gib"] for s, n in columns]
    if any(v is not None for v in gpu_peak):
        lines.append("| peak GPU memory (GiB) | " + " | ".join(
            "-" if v is None else f"{v:.2f}" for v in gpu_peak) + " |")
    for size, entry in report["sizes"].items():
        if "peers" in entry:
            ratios = entry["features_ratio_ours_over_peer"]
            lines += ["", f"Feature stage at {int(size):,} users, CPU peers from the same tables: "
                      + "; ".join(f"{m} {_fmt(entry['peers'][m])} s (ours/peer {ratios[m]:.2f})"
                                  for m in entry["peers"])]
        if "agreement" in entry:
            agree = entry["agreement"]
            lines += ["", f"GPU vs CPU at {int(size):,} users: speed-up "
                      f"{entry['speedup_gpu_over_cpu']:.1f}x; "
                      + "; ".join(f"{k} {v}" for k, v in agree.items())]
    if report.get("skipped"):
        lines += ["", "Not measured (out of time): " + "; ".join(report["skipped"])]
    return "\n".join(lines) + "\n"


def plot_stages(report: dict[str, Any], path: Path) -> None:
    """Stacked bars of run stages per size and backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [(size, name) for size, entry in report["sizes"].items() for name in entry["backends"]]
    stages = [s for s in STAGE_ORDER if s not in ("load_csv", "run_total")]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(columns)), 4.5))
    bottom = [0.0] * len(columns)
    colours = plt.get_cmap("tab20").colors
    for i, stage in enumerate(stages):
        heights = [report["sizes"][s]["backends"][n]["seconds"].get(stage, {"median": 0.0})["median"]
                   for s, n in columns]
        ax.bar(range(len(columns)), heights, bottom=bottom, label=stage, color=colours[i % 20])
        bottom = [b + h for b, h in zip(bottom, heights)]
    ax.set_xticks(range(len(columns)), [f"{int(s):,}\n{n}" for s, n in columns])
    ax.set_ylabel("seconds (median)")
    ax.set_title("gpuseg run, parquet cache to report")
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
