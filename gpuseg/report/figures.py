"""The report's figures, drawn with matplotlib's object API on the Agg canvas.

Every function takes plain host data (numpy arrays, pandas frames, lists of
names) and returns a :class:`~matplotlib.figure.Figure`; none reads a result
or a file, so each can be tested and reused on its own. Segment ``j`` has the
same colour in every figure (:func:`segment_colors`).
"""
from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

#: Pixel density of the saved PNGs: sharp on a laptop screen, small enough to embed.
DPI = 110
#: Fitted and placed shoppers on the map's second panel: colours no segment has.
FITTED_COLOR = "#b8c2cc"
PLACED_COLOR = "#e8590c"
#: The dendrogram's clusters below the cut: greys, so that no colour suggests a KMeans segment.
TREE_COLORS = ("#1f2933", "#7b8794")
ABOVE_CUT_COLOR = "#cbd2d9"
WEEKDAYS = ("Sat", "Sun", "Mon", "Tue", "Wed", "Thu", "Fri")  # Instacart's order_dow 0..6


def segment_colors(k: int) -> list[str]:
    """One distinct colour per segment, as hex strings (tab10, tab20 beyond ten segments)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if k <= 10 else "tab20"]
    return [to_hex(cmap(j % cmap.N)) for j in range(k)]


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def to_png(figure: Figure) -> bytes:
    """PNG bytes of a figure."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def segment_sizes(names: Sequence[str], sizes: Sequence[int] | np.ndarray) -> Figure:
    """Horizontal bars of users per segment, labelled with count and share."""
    counts = np.asarray(sizes, dtype=np.int64)
    figure = new_figure(8, 0.5 * len(names) + 1.2)
    ax = figure.add_subplot()
    rows = np.arange(len(names))
    ax.barh(rows, counts, color=segment_colors(len(names)))
    ax.set_yticks(rows, [f"{j}: {name}" for j, name in enumerate(names)])
    ax.invert_yaxis()
    total = max(int(counts.sum()), 1)
    for row, size in zip(rows, counts):
        ax.text(float(size), float(row), f"  {size:,} ({size / total:.0%})", va="center", fontsize=9)
    ax.set_xlim(0, counts.max(initial=1) * 1.3)
    ax.set_xlabel("users")
    ax.set_title("Segment sizes")
    ax.spines[["top", "right"]].set_visible(False)
    return figure


def umap_map(x: np.ndarray, y: np.ndarray, labels: np.ndarray, names: Sequence[str],
             subtitle: str, placed: np.ndarray | None = None) -> Figure:
    """Scatter of the 2-D UMAP coordinates coloured by segment; NaN rows (not embedded) are skipped.

    With ``placed`` (a mask of the users placed onto a layout fitted on the
    others), a second panel draws the fitted users grey and the placed ones
    orange, so that what placement does to the map can be seen.
    """
    embedded = np.isfinite(x) & np.isfinite(y)
    shown = None if placed is None else np.asarray(placed, dtype=bool)[embedded]
    x, y, labels = x[embedded], y[embedded], labels[embedded]
    colors = np.asarray(segment_colors(len(names)))
    figure = new_figure(8 if shown is None else 14, 6.5)
    ax = figure.add_subplot(1, 1 if shown is None else 2, 1)
    # Shuffled drawing order so that no segment is painted over another wholesale.
    order = np.random.default_rng(0).permutation(x.size)
    size = float(np.clip(20_000 / max(x.size, 1), 0.3, 8))
    ax.scatter(x[order], y[order], c=colors[labels[order]], s=size, linewidths=0, alpha=0.7,
               rasterized=True)
    ax.legend(handles=[Patch(color=c, label=f"{j}: {n}") for j, (n, c) in enumerate(zip(names, colors))],
              loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"UMAP map of the shoppers ({subtitle})", fontsize=11)
    if shown is not None:
        where = figure.add_subplot(1, 2, 2, sharex=ax, sharey=ax)
        where.scatter(x[order], y[order], c=np.where(shown[order], PLACED_COLOR, FITTED_COLOR),
                      s=size, linewidths=0, alpha=0.7, rasterized=True)
        where.legend(handles=[Patch(color=FITTED_COLOR, label=f"fitted ({(~shown).sum():,})"),
                              Patch(color=PLACED_COLOR, label=f"placed ({shown.sum():,})")],
                     loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False,
                     fontsize=9)
        where.set_xticks([])
        where.set_yticks([])
        where.set_title("Shoppers the layout was fitted on, and those placed onto it", fontsize=11)
    return figure


def silhouette_plot(silhouette: np.ndarray, labels: np.ndarray, names: Sequence[str],
                    overall: float) -> Figure:
    """The classic silhouette plot: each segment's sorted per-user values as a filled band.

    Users with a NaN silhouette (outside the sample) are left out.
    """
    measured = np.isfinite(silhouette)
    silhouette, labels = silhouette[measured], labels[measured]
    colors = segment_colors(len(names))
    figure = new_figure(8, 6)
    ax = figure.add_subplot()
    gap = max(silhouette.size // 50, 10)
    bottom = gap
    centres = []
    for j in range(len(names)):
        values = np.sort(silhouette[labels == j])
        rows = np.arange(bottom, bottom + values.size)
        ax.fill_betweenx(rows, 0, values, color=colors[j], linewidth=0)
        centres.append(bottom + values.size / 2)
        bottom += values.size + gap
    ax.axvline(overall, color="crimson", linestyle="--", linewidth=1.2,
               label=f"mean silhouette {overall:.3f}")
    ax.set_xlim(min(-0.1, float(silhouette.min(initial=0)) - 0.05), 1)
    ax.set_ylim(0, bottom)
    ax.set_yticks(centres, [f"segment {j}" for j in range(len(names))])
    ax.set_xlabel("silhouette coefficient")
    ax.legend(loc="lower right", fontsize=9)
    ax.set_title(f"Silhouette per segment ({silhouette.size:,} users)")
    return figure


def k_sweep(sweep: pd.DataFrame, *, elbow_k: int | None, chosen_k: int,
            sharpness_threshold: float | None = None, verdict: str | None = None) -> Figure:
    """WCSS (elbow marked), elbow sharpness, silhouette, Calinski-Harabasz, Davies-Bouldin vs K.

    ``sweep`` has a column ``k`` and any of ``wcss``, ``elbow_sharpness``,
    ``silhouette``, ``calinski_harabasz``, ``davies_bouldin``; the sharpness
    panel draws ``sharpness_threshold`` (the K rule's "sharp") and the last
    panel states ``verdict`` (the rule's reason).
    """
    panels = (("wcss", "WCSS (lower is tighter)"),
              ("elbow_sharpness", "Elbow sharpness: K-th segment's WCSS gain\nover the next two's"),
              ("silhouette", "Silhouette (higher is better)"),
              ("calinski_harabasz", "Calinski-Harabasz (higher is better)"),
              ("davies_bouldin", "Davies-Bouldin (lower is better)"))
    figure = new_figure(12, 6.5)
    axes = figure.subplots(2, 3).ravel()
    for ax, (column, title) in zip(axes, panels):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("K")
        if column not in sweep:
            ax.text(0.5, 0.5, "not computed", ha="center", va="center", transform=ax.transAxes)
            continue
        ax.plot(sweep["k"], sweep[column], marker="o", color="#3b6ea8")
        ax.axvline(chosen_k, color="grey", linestyle=":", linewidth=1.2, label=f"chosen K = {chosen_k}")
        if column == "wcss" and elbow_k is not None and elbow_k in set(sweep["k"]):
            at = float(sweep.loc[sweep["k"] == elbow_k, "wcss"].iloc[0])
            ax.plot([elbow_k], [at], marker="o", markersize=14, markerfacecolor="none",
                    markeredgecolor="crimson", markeredgewidth=2, linestyle="none",
                    label=f"elbow K = {elbow_k}")
        if column == "elbow_sharpness" and sharpness_threshold is not None:
            ax.axhline(sharpness_threshold, color="crimson", linestyle="--", linewidth=1,
                       label=f"sharp from {sharpness_threshold:g}")
            ax.set_yscale("log")
        ax.set_xticks(sweep["k"])
        ax.legend(fontsize=8)
    verdict_ax = axes[-1]
    verdict_ax.set_axis_off()
    if verdict:
        verdict_ax.text(0.0, 1.0, textwrap.fill(verdict, 48), va="top", ha="left", fontsize=8.5,
                        transform=verdict_ax.transAxes, color="#1f2933")
    figure.suptitle("Choosing K")
    return figure


def memberships(table: pd.DataFrame, between: float, sure: float) -> Figure:
    """One 100% bar per segment: shares of its users between personas, leaning and sure.

    ``table`` is :func:`gpuseg.report.content.membership_table`'s: columns
    ``segment, persona, between, leaning, sure``.
    """
    k = len(table)
    figure = new_figure(9, 0.5 * k + 1.6)
    ax = figure.add_subplot()
    rows = np.arange(k)
    left = np.zeros(k)
    bands = (("between", f"between personas (< {between:g})", "#e8590c"),
             ("leaning", f"leaning ({between:g}-{sure:g})", "#f2c94c"),
             ("sure", f"sure (>= {sure:g})", "#3b6ea8"))
    for column, label, color in bands:
        share = table[column].to_numpy(dtype=np.float64)
        ax.barh(rows, share, left=left, color=color, label=label)
        for row, (start, width) in enumerate(zip(left, share)):
            if width >= 0.06:
                ax.text(start + width / 2, row, f"{width:.0%}", ha="center", va="center",
                        fontsize=8, color="white" if column != "leaning" else "#1f2933")
        left += share
    ax.set_yticks(rows, [f"{j}: {name}" for j, name in zip(table["segment"], table["persona"])])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the segment's shoppers, by membership (how sure: the share of such "
                  "shoppers a refit keeps)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, frameon=False, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title("How sure is each assignment")
    return figure


def reliability(bins: pd.DataFrame, segments: pd.DataFrame, *, dissolves_below: float,
                weak_below: float) -> Figure:
    """Left: each certainty bin's mean certainty against the share its shoppers kept on the
    refits (on the diagonal when calibrated; marker area: the bin's share of shoppers). Right:
    each segment's reproducibility (mean best-match Jaccard) with the dissolve and weak lines.

    ``bins`` is :func:`gpuseg.report.content.reliability_table`'s (``label, share,
    mean_certainty, mean_agreement``); ``segments`` :func:`~gpuseg.report.content.membership_table`'s
    (``segment, persona, reproducibility``).
    """
    figure = new_figure(10, max(3.6, 0.45 * len(segments) + 1.6))
    left, right = figure.subplots(1, 2, width_ratios=(1, 1.2))
    held = bins[bins["share"] > 0]
    left.plot([0, 1], [0, 1], ls="--", color="#9aa5b1", lw=1, label="calibrated")
    left.scatter(held["mean_certainty"], held["mean_agreement"],
                 s=20 + 600 * held["share"].to_numpy(dtype=np.float64), color="#3b6ea8",
                 alpha=0.8, zorder=3, label="a certainty bin (area: its shoppers)")
    for row in held.itertuples(index=False):
        left.annotate(f"{row.share:.0%}", (row.mean_certainty, row.mean_agreement),
                      textcoords="offset points", xytext=(6, -10), fontsize=8)
    left.set_xlim(0, 1.02)
    left.set_ylim(0, 1.02)
    left.set_xlabel("mean membership (how sure)")
    left.set_ylabel("share kept in their segment by the refits")
    left.set_title("Does a membership of 0.9 mean 9 in 10?")
    left.legend(loc="upper left", fontsize=8, frameon=False)
    rows = np.arange(len(segments))
    values = segments["reproducibility"].to_numpy(dtype=np.float64)
    colors = ["#c92a2a" if v < dissolves_below else "#f08c00" if v < weak_below else "#2f9e44"
              for v in values]
    right.barh(rows, values, color=colors)
    for row, value in zip(rows, values):
        right.text(min(value, 0.93) + 0.01, row, f"{value:.2f}", va="center", fontsize=8)
    right.axvline(dissolves_below, ls=":", color="#c92a2a", lw=1)
    right.axvline(weak_below, ls=":", color="#f08c00", lw=1)
    right.set_yticks(rows, [f"{j}: {name}" for j, name in zip(segments["segment"],
                                                                segments["persona"])])
    right.invert_yaxis()
    right.set_xlim(0, 1.05)
    right.set_xlabel("comes back on the refits (mean best-match Jaccard)")
    right.set_title("Does each segment come back?")
    for ax in (left, right):
        ax.spines[["top", "right"]].set_visible(False)
    return figure


def radar(profile: pd.DataFrame, names: Sequence[str], feature_labels: Sequence[str]) -> Figure:
    """One radar chart per segment over the same axes; ``profile`` is segments x features in [0, 1]."""
    k, n_axes = profile.shape
    colors = segment_colors(k)
    angles = np.linspace(0, 2 * np.pi, n_axes, endpoint=False)
    closed = np.append(angles, angles[0])
    columns = min(k, 3)
    grid_rows = -(-k // columns)
    figure = new_figure(3.6 * columns, 3.7 * grid_rows)
    for j in range(k):
        ax = figure.add_subplot(grid_rows, columns, j + 1, projection="polar")
        values = np.append(profile.iloc[j].to_numpy(dtype=np.float64), profile.iloc[j, 0])
        ax.plot(closed, values, color=colors[j], linewidth=1.5)
        ax.fill(closed, values, color=colors[j], alpha=0.3)
        ax.set_ylim(0, 1)
        ax.set_yticks([0.5, 1.0], ["", ""])
        ax.set_xticks(angles, feature_labels, fontsize=7)
        ax.set_title(f"{j}: {names[j]}", fontsize=9, color=colors[j], fontweight="bold")
    figure.suptitle("Segment profiles against the average shopper (middle ring)")
    return figure


def importance(eta_squared: pd.Series, families: pd.DataFrame, *, clear_drop: float,
               majority_share: float, top: int = 15) -> Figure:
    """Feature families through the saved model, beside the single features' eta squared.

    ``families`` is indexed by family name with columns ``drop`` (share of
    shoppers moved when the family is shuffled), ``drop_std`` and
    ``alone_accuracy`` (share placed in their segment by the family alone);
    ``eta_squared`` is indexed by feature label. ``clear_drop`` marks a clear
    drop; ``majority_share`` (the largest segment's share) is what a family
    alone must beat to carry any information.
    """
    shown = families.iloc[::-1]
    eta = eta_squared.sort_values(ascending=False).head(top)[::-1]
    figure = new_figure(14, max(0.28 * len(shown), 0.3 * len(eta)) + 1.8)
    drop_ax, alone_ax, eta_ax = figure.subplots(1, 3, gridspec_kw={"width_ratios": [1.2, 1, 1]})
    labels = shown.index.astype(str)
    colors = np.where(shown["drop"].to_numpy() >= clear_drop, "#e8590c", "#f4b183")
    drop_ax.barh(labels, shown["drop"].to_numpy(), xerr=shown["drop_std"].to_numpy(),
                 color=colors)
    drop_ax.axvline(clear_drop, color="crimson", linestyle="--", linewidth=1,
                    label=f"clear drop ({clear_drop:.0%})")
    drop_ax.set_xlabel("shoppers who change segment\nwhen the family is shuffled")
    drop_ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    drop_ax.legend(fontsize=8, loc="lower right")
    if not (shown["drop"].to_numpy() >= clear_drop).any():
        drop_ax.text(0.5, 0.5, "no family is needed on its own:\nthe others still place "
                     "almost every shopper\n(see which are enough, middle)", ha="center",
                     va="center",
                     transform=drop_ax.transAxes, color="#52606d", fontsize=9)
    alone_ax.barh(labels, shown["alone_accuracy"].to_numpy(), color="#3b6ea8")
    alone_ax.axvline(majority_share, color="grey", linestyle=":", linewidth=1.2,
                     label=f"largest segment ({majority_share:.0%})")
    alone_ax.set_xlim(0, 1)
    alone_ax.set_yticks([])
    alone_ax.set_xlabel("shoppers placed in their segment\nby the family alone")
    alone_ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    alone_ax.legend(fontsize=8, loc="lower right")
    eta_ax.barh(eta.index.astype(str), eta.to_numpy(), color="#7a8ca3")
    eta_ax.set_xlabel("eta squared\n(share of variance between segments)")
    eta_ax.set_title(f"Top {len(eta)} single features", fontsize=9)
    for ax in (drop_ax, alone_ax, eta_ax):
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(axis="y", labelsize=8)
    figure.suptitle("What places a shopper in a segment: feature families through the saved "
                    "model")
    return figure


def activity_heatmaps(activity: np.ndarray, names: Sequence[str]) -> Figure:
    """Hour x weekday heatmap of each segment's orders, as a share of that segment's orders."""
    k = activity.shape[0]
    totals = activity.reshape(k, -1).sum(axis=1).clip(min=1)
    shares = activity / totals[:, None, None]
    columns = min(k, 2)
    grid_rows = -(-k // columns)
    figure = new_figure(6 * columns, 2.3 * grid_rows + 0.6)
    axes = np.atleast_1d(figure.subplots(grid_rows, columns, squeeze=False)).ravel()
    vmax = float(shares.max(initial=0)) or 1.0
    image = None
    for j, ax in enumerate(axes):
        if j >= k:
            ax.set_axis_off()
            continue
        image = ax.imshow(shares[j] * 100, aspect="auto", cmap="viridis", vmin=0, vmax=vmax * 100)
        ax.set_yticks(range(7), WEEKDAYS, fontsize=7)
        ax.set_xticks(range(0, 24, 3), [f"{h:02d}h" for h in range(0, 24, 3)], fontsize=7)
        ax.set_title(f"{j}: {names[j]}", fontsize=9)
    if image is not None:
        figure.colorbar(image, ax=axes.tolist(), label="% of segment's orders", shrink=0.9,
                        aspect=30, pad=0.02)
    figure.suptitle("When each segment orders (weekday x hour of day)")
    return figure


def top_aisles(lifts: Sequence[pd.Series], names: Sequence[str]) -> Figure:
    """Per segment, horizontal bars of its top aisles' lift (index: aisle name)."""
    k = len(names)
    colors = segment_colors(k)
    columns = min(k, 3)
    grid_rows = -(-k // columns)
    figure = new_figure(4.2 * columns, 2.4 * grid_rows + 0.5)
    axes = figure.subplots(grid_rows, columns, squeeze=False).ravel()
    for j, ax in enumerate(axes):
        if j >= k:
            ax.set_axis_off()
            continue
        lift = lifts[j][::-1]
        ax.barh(lift.index.astype(str), lift.to_numpy(dtype=np.float64), color=colors[j])
        ax.axvline(1.0, color="grey", linewidth=0.8, linestyle=":")
        ax.tick_params(axis="y", labelsize=8)
        ax.set_title(f"{j}: {names[j]}", fontsize=9)
        ax.set_xlabel("lift (x the average shopper)", fontsize=8)
    figure.suptitle("Top aisles per segment, by lift")
    return figure


def dendrogram(linkage: np.ndarray, k: int, leaves: int = 40) -> Figure:
    """Ward dendrogram, truncated to its last ``leaves`` merges, cut into ``k`` clusters.

    The clusters below the cut alternate between two greys (:data:`TREE_COLORS`):
    they are the tree's own, not the KMeans segments, so they take none of the
    segments' colours.
    """
    from scipy.cluster.hierarchy import dendrogram as draw_dendrogram
    from scipy.cluster.hierarchy import fcluster

    figure = new_figure(10, 4.5)
    ax = figure.add_subplot()
    n = linkage.shape[0] + 1
    heights = np.sort(linkage[:, 2])
    # Any height strictly between the (k-1)-th and k-th highest merges cuts the tree into k.
    cut = (heights[-k] + heights[-k + 1]) / 2 if 2 <= k <= heights.size else None
    cluster_of_leaf = (fcluster(linkage, k, criterion="maxclust") if cut is not None
                       else np.ones(n, dtype=np.int64))
    # Each merge below the cut joins leaves of one cluster: its first leaf says which.
    first_leaf = np.empty(2 * n - 1, dtype=np.int64)
    first_leaf[:n] = np.arange(n)
    for i, (left, _, _, _) in enumerate(linkage):
        first_leaf[n + i] = first_leaf[int(left)]
    # Neighbouring clusters, in the order the tree draws them, take alternate greys.
    drawn = draw_dendrogram(linkage, no_plot=True)["leaves"]
    order = {c: rank for rank, c in enumerate(dict.fromkeys(cluster_of_leaf[drawn]))}

    def color(link: int) -> str:
        if cut is not None and link >= n and linkage[link - n, 2] > cut:
            return ABOVE_CUT_COLOR
        return TREE_COLORS[order[cluster_of_leaf[first_leaf[link]]] % len(TREE_COLORS)]

    draw_dendrogram(linkage, ax=ax, truncate_mode="lastp", p=leaves, link_color_func=color,
                    no_labels=True)
    if cut is not None:
        ax.axhline(cut, color="crimson", linestyle="--", linewidth=1, label=f"cut into {k} clusters")
        ax.legend(fontsize=9)
    ax.set_ylabel("Ward merge distance")
    ax.set_title(f"Hierarchical clustering (Ward) of {n:,} micro-clusters, "
                 f"last {min(leaves, n)} merges shown")
    return figure
