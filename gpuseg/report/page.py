"""The report page: one HTML file with inline CSS and every figure embedded as a data URI.

The page loads nothing: a Content-Security-Policy allows images from data
URIs, inline styles and the one inline script (by its hash) only. The script
merely records, on ``<body data-images-ok>``, whether every image decoded, so
that a headless browser test can read it from the DOM; the page shows
everything without it. All text from the run passes through
:func:`html.escape`.
"""
from __future__ import annotations

import base64
import hashlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from html import escape
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ..cluster import BETWEEN_PERSONAS
from ..cluster.certainty import SegmentReproducibility
from ..explain.rules import MAX_DEPTH as RULE_TREE_DEPTH
from ..explain.rules import SegmentRules
from ..personas import MATERIAL_SHARE, Action, Claim
from ..personas.basket import DepartmentShare
from ..result import SegmentationResult
from . import content, drawing, figures, guide
from .html import number as _number
from .html import percent as _percent
from .html import section as _section
from .html import table as _table

REPORT_FILE = "report.html"
FIGURES_DIR = "figures"

_IMAGE_CHECK_SCRIPT = (
    "window.addEventListener('load', function () {"
    " var images = Array.prototype.slice.call(document.images);"
    " var ok = images.every(function (img) { return img.complete && img.naturalWidth > 0; });"
    " document.body.dataset.imagesOk = String(ok);"
    " document.body.dataset.imageCount = String(images.length);"
    " });"
)

_CSS = """
:root { --ink: #1f2933; --muted: #52606d; --line: #d9e2ec; --panel: #f5f7fa; --accent: #3b6ea8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 40px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 0 0 6px; }
p.lead, .muted { color: var(--muted); }
.verdict { border-left: 6px solid var(--accent); background: var(--panel); padding: 12px 16px;
           margin: 16px 0; border-radius: 4px; }
.verdict.strong { border-color: #2f9e44; } .verdict.moderate { border-color: #f08c00; }
.verdict.weak { border-color: #c92a2a; }
.verdict strong { text-transform: uppercase; letter-spacing: .04em; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 10px; }
.card { background: var(--panel); border-radius: 6px; padding: 10px 12px; }
.card .value { font-size: 22px; font-weight: 600; }
.card .label { font-size: 12px; color: var(--muted); }
figure { margin: 16px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 4px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; max-width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: right;
         vertical-align: top; }
td { white-space: nowrap; }
th { vertical-align: bottom; overflow-wrap: break-word; }
th.text, td.text { text-align: left; }
td.text { white-space: normal; overflow-wrap: break-word; }
p, li, dd, dt, figcaption, summary, h1, h2, h3 { overflow-wrap: break-word; }
.persona table { width: 100%; }
.term { text-decoration: underline dotted; cursor: help; }
ul.actions li { margin-bottom: 4px; }
.glossary dt { font-weight: 600; margin-top: 8px; } .glossary dd { margin: 0 0 0 18px; }
.columns { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 10px;
           align-items: start; }
@media (max-width: 900px) { main { padding: 16px 16px 48px; } th, td { padding: 4px 6px; } }
.personas { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 14px; }
.persona { border: 1px solid var(--line); border-top: 6px solid var(--segment); border-radius: 6px;
           padding: 12px 14px; }
.persona ul { margin: 4px 0 8px; padding-left: 20px; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px;
          background: var(--segment); margin-right: 6px; }
details { margin: 8px 0; } summary { cursor: pointer; color: var(--accent); }
pre { background: var(--panel); padding: 10px; overflow-x: auto; font-size: 12px; }
"""


def write_report(result: SegmentationResult, folder: str | os.PathLike, *,
                 customer_lists: Mapping[int, str] | None = None) -> Path:
    """Draw the figures of ``result`` and write ``figures/*.png`` and ``report.html`` into ``folder``.

    Parameters
    ----------
    result : SegmentationResult
    folder : path
        Created if missing; files already there with the same names are replaced.
    customer_lists : mapping of int to str, optional
        Each segment's customer list, relative to ``folder``
        (:func:`gpuseg.customers.write_customer_lists`): each card links its
        segment's. The links are the page's only references to other files,
        and relative, so they hold when the folder is moved.

    Returns
    -------
    Path
        The written ``report.html``.
    """
    folder = Path(folder)
    (folder / FIGURES_DIR).mkdir(parents=True, exist_ok=True)
    images = _FigureWriter(folder / FIGURES_DIR)
    page = images.fill(_render(result, images, customer_lists or {}))
    path = folder / REPORT_FILE
    path.write_text(page, encoding="utf-8")
    return path


class _FigureWriter:
    """Collects the page's figures, then draws them all at once (:func:`drawing.draw_all`).

    Each call returns the ``<figure>`` element with a placeholder for its
    image; :meth:`fill` saves each drawing as ``<name>.png`` and puts the same
    bytes into the page.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.jobs: dict[str, Callable[[], Figure]] = {}

    def __call__(self, name: str, draw: Callable[[], Figure], alt: str, caption: str) -> str:
        self.jobs[name] = draw
        return (f'<figure><img src="{_placeholder(name)}" alt="{escape(alt)}">'
                f"<figcaption>{escape(caption)}</figcaption></figure>")

    def fill(self, page: str) -> str:
        for name, png in drawing.draw_all(self.jobs).items():
            (self.folder / f"{name}.png").write_bytes(png)
            source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            page = page.replace(_placeholder(name), source)
        return page


def _placeholder(name: str) -> str:
    # A NUL never occurs in the escaped text around it.
    return f"\0figure:{name}\0"


def _render(result: SegmentationResult, figure: _FigureWriter,
            customer_lists: Mapping[int, str]) -> str:
    names = content.persona_names(result)
    head = content.headline(result)
    sections = [
        _header(result, head),
        _section("Segments", _segments(result, names, figure)),
        _section("Personas and what to do about them", _personas(result, names, customer_lists)),
        _section("How sure is each assignment",
                 _memberships(result, figure)
                 + guide.between_personas(content.between_guidance(result), customer_lists)
                 + guide.new_shoppers(content.short_history_table(result), result.k)),
        _section("The map", _map(result, names, figure)),
        _section("How the segments differ", _profiles(result, names, figure)),
        _section("How good is the segmentation", _validation(result, names, head, figure)),
        _section("Glossary", guide.glossary()),
        _section("Run details", _details(result)),
    ]
    digest = base64.b64encode(hashlib.sha256(_IMAGE_CHECK_SCRIPT.encode()).digest()).decode()
    policy = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
              f"script-src 'sha256-{digest}'")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{escape(policy)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>gpuseg report: {head['users']:,} shoppers, {head['k']} segments</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        *sections,
        "</main>",
        f"<script>{_IMAGE_CHECK_SCRIPT}</script>",
        "</body>",
        "</html>",
        "",
    ])


# -- sections --------------------------------------------------------------------------------


def _header(result: SegmentationResult, head: dict[str, Any]) -> str:
    source = head["source"]
    cards = [
        (f"{head['users']:,}", f"shoppers segmented ({head['excluded']:,} excluded: "
                               f"fewer than {result.config.min_orders} orders)"),
        (str(head["k"]), "segments"),
        (_number(head["silhouette"]), f"silhouette ({head['silhouette_scope']})"),
        (_number(head["seed_ari"]), "stability: ARI across seeds"),
        (_number(head["bootstrap_ari"]), "stability: ARI across bootstrap resamples"),
        (_percent(head["wcss_reduction"]), "WCSS reduction vs one segment"),
        (_percent(head["between_share"]),
         f"between personas (membership below {head['between_threshold']:g})"
         if head["between_threshold"] is not None else "between personas"),
        (_percent(head["density_outlier_share"]), f"{head['density_label']} outliers"),
        (f"{head['seconds_total']:.1f} s", "wall time of all pipeline stages"),
        (head["backend"].upper(), head["device"]),
    ]
    card_html = "".join(f'<div class="card"><div class="value">{escape(value)}</div>'
                        f'<div class="label">{escape(label)}</div></div>' for value, label in cards)
    strength = escape(str(head["verdict"]))
    return (f"<header><h1>Shopper segmentation report</h1>"
            f'<p class="lead">{head["users"]:,} shoppers from {escape(str(source))}, '
            f"gpuseg {escape(str(head['gpuseg_version']))}</p>"
            f'<div class="verdict {strength}"><strong>Verdict: {strength}.</strong> '
            f"{escape(str(head['verdict_text']))}</div>"
            f'<div class="cards">{card_html}</div>'
            f'<p class="muted">K: {escape(str(head["k_reason"]))}</p></header>')


def _segments(result: SegmentationResult, names: list[str], figure: _FigureWriter) -> str:
    sizes = content.segment_sizes(result)
    table = content.segment_table(result)
    colors = figures.segment_colors(len(names))
    rows = []
    for row, color in zip(table.itertuples(index=False), colors):
        rows.append([
            f'<span class="swatch" style="--segment: {color}"></span>{row.segment}: {escape(row.persona)}',
            f"{row.users:,}", f"{row.share:.1%}", _number(row.silhouette), f"{row.basket_size:.1f}",
            f"{row.days_between:.1f}", f"{row.reorder_ratio:.0%}", f"{int(row.preferred_hour):02d}:00",
            f"{row.weekend_share:.0%}", f"{row.density_outliers:.1%}",
        ])
    header = ["segment", "users", "share", "silhouette", "basket size", "days between orders",
              "reorder rate", "preferred hour", "weekend orders",
              f"{content.density_label(result)} outliers"]
    return (figure("sizes", partial(figures.segment_sizes, names, sizes), "Bar chart of segment sizes",
                   "Users per segment (KMeans), numbered from the largest.")
            + _table(header, rows, escaped=True))


def _personas(result: SegmentationResult, names: list[str],
              customer_lists: Mapping[int, str]) -> str:
    profiles = result.profiles.set_index("segment")
    colors = figures.segment_colors(len(names))
    rules = {entry.segment: entry for entry in content.segment_rules(result)}
    comes_back = content.segment_reproducibility(result)
    cards = []
    for persona in content.personas(result):
        j = persona.segment
        row = profiles.loc[j]
        departments = _over_index(row["top_departments"], row["top_department_lifts"])
        aisles = _over_index(row["top_aisles"], row["top_aisle_lifts"])
        cards.append(
            f'<div class="persona" style="--segment: {colors[j]}">'
            f"<h3>{j}: {escape(persona.name)}</h3>"
            f'<p class="muted">{_volume(row)}; orders around '
            f'{int(row["preferred_hour"]):02d}:00, {row["weekend_share"]:.0%} at the weekend</p>'
            f"{_comes_back(comes_back[j])}"
            f"<p><b>Over-buys</b> {departments}<br><b>Top aisles</b> {aisles}</p>"
            f"<b>Actions</b>{_actions(persona.actions)}"
            f"<b>Who is in it</b>{_rules(rules.get(j))}"
            f"{_customer_list(customer_lists.get(j), int(row['size']))}"
            f"<details><summary>Why this name</summary><p>{_claim(persona.rule)}</p>"
            f"<ul>{''.join(f'<li>{_claim(claim)}</li>' for claim in persona.evidence)}</ul>"
            f"{_basket(persona.basket)}</details></div>")
    fitted = next((entry.sample_size for entry in rules.values()), None)
    trees = ("" if fitted is None else
             f" Rules come from a decision tree of depth at most {RULE_TREE_DEPTH} per "
             f"segment, fitted on a seeded sample of {fitted:,} shoppers; their "
             "precision (share of the shoppers a rule picks who are in the segment) and coverage "
             "(share of the segment it picks) are measured on every shopper.")
    return ('<p class="muted">Names come from explicit rules over each segment\'s profile '
            "(see <i>Why this name</i>, where every sentence states the numbers it rests on; "
            "hover over a term for the column it is computed from); lifts compare a segment's "
            "share of items with all shoppers'. A department a name rests on is at least "
            f"{MATERIAL_SHARE:.0%} of the segment's items, not only a high lift. Each action names "
            f"the fact that triggers it.{escape(trees)}</p>"
            f"{guide.action_thresholds()}"
            f'<div class="personas">{"".join(cards)}</div>')


def _comes_back(segment: SegmentReproducibility) -> str:
    """One line on a persona card: how far the segment comes back on the refits."""
    text = (f"Comes back on refits: Jaccard {segment.reproducibility:.2f} ({segment.verdict}); "
            f"its shoppers are {segment.mean_certainty:.0%} sure on average.")
    if segment.comes_back:
        return f'<p class="muted">{escape(text)}</p>'
    return (f'<p class="verdict weak"><strong>Does not come back</strong> on refits (Jaccard '
            f"{segment.reproducibility:.2f}): no persona name; do not act on it as a segment.</p>")


def _volume(row: Any) -> str:
    """``6,399 shoppers (37.6%), 41.2% of all orders and 55.0% of all items``: the segment's weight."""
    shoppers = f"{int(row['size']):,} shoppers ({row['share']:.1%})"
    if "item_share" not in row or not math.isfinite(row["item_share"]):
        return shoppers
    return (f"{shoppers}, {row['order_share']:.1%} of all orders and {row['item_share']:.1%} of "
            "all items")


def _claim(claim: Claim) -> str:
    """A claim as escaped HTML, its label carrying the technical name on hover."""
    return (f'<span class="term" title="{escape(claim.subject)}">{escape(claim.label)}</span>: '
            f"{escape(claim.detail)}")


def _actions(actions: Sequence[Action]) -> str:
    """Each action with the fact that triggers it (the baseline statement without an action line)."""
    items = [f"<li><b>{escape(action.text)}</b><br>"
             f'<span class="muted">{_claim(action.fact)}</span></li>' for action in actions]
    return f'<ul class="actions">{"".join(items)}</ul>'


def _customer_list(path: str | None, users: int) -> str:
    if path is None:
        return ""
    return (f'<p><a href="{escape(path)}" type="text/csv">Customer list</a> '
            f'<span class="muted">({users:,} shoppers, CSV: membership, between personas, second '
            "segment and its persona; surest first)</span></p>")


def _rules(entry: SegmentRules | None) -> str:
    """A segment's rules as escaped HTML, each with its precision and coverage."""
    if entry is None:
        return '<p class="muted">No rules were computed for this run.</p>'
    if not entry.rules:
        return ('<p class="muted">No rule of a few conditions picks this segment out: every '
                "candidate was wrong about most of the shoppers it picked.</p>")
    items = [" and ".join(f'<span class="term" title="{escape(c.feature)}">{escape(c.text)}</span>'
                          for c in rule.conditions)
             + f" (precision {rule.precision:.2f}, covers {rule.coverage:.0%})"
             for rule in entry.rules]
    joint = ("" if len(entry.rules) < 2 else
             f'<p class="muted">Either rule: precision {entry.precision:.2f}, covers '
             f"{entry.coverage:.0%}.</p>")
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>" + joint


def _basket(basket: Sequence[DepartmentShare]) -> str:
    """The departments behind a name and the segment's other material differences, as a table."""
    if not basket:
        return '<p class="muted">No department differs materially from the average shopper.</p>'
    rows = [[entry.department + (" *" if entry.named else ""), f"{entry.share:.1%}",
             f"{entry.population_share:.1%}",
             "n/a" if not math.isfinite(entry.lift) else f"{entry.lift:.2f}x"] for entry in basket]
    named = ('<p class="muted">* the name rests on it.</p>' if any(e.named for e in basket)
             else "")
    return (_table(["department", "of its items", "average shopper", "lift"], rows)
            + named)


def _memberships(result: SegmentationResult, figure: _FigureWriter) -> str:
    table = content.membership_table(result)
    facts = content.certainty_facts(result)
    bins = content.reliability_table(result)
    head = content.headline(result)
    between, sure = BETWEEN_PERSONAS, content.MEMBERSHIP_SURE
    names = content.persona_names(result)
    rows = [[f"{row.segment}: {row.persona}", f"{row.users:,}", f"{row.mean:.2f}",
             f"{row.between:.1%}", f"{row.sure:.1%}", f"{row.reproducibility:.2f} ({row.verdict})",
             f"{row.leans_to}: {names[row.leans_to]}"]
            for row in table.itertuples(index=False)]
    fitted = ("every shopper" if facts["n_fit"] == facts["n_users"]
              else f"a seeded sample of {facts['n_fit']:,} shoppers")
    held = (f"On those refits shoppers were {_percent(facts['mean_certainty'])} sure on average "
            f"and {_percent(facts['mean_agreement'])} stayed")
    verdict = (f"{held}: the memberships are calibrated (every bin holding 5% of the shoppers "
               f"within {facts['max_bin_gap']:.2f} of what its shoppers did)."
               if facts["calibrated"] else
               f"{held}: the memberships are <b>not calibrated</b> on this data (gap "
               f"{facts['gap']:+.2f}, largest gap in a bin holding 5% of the shoppers "
               f"{facts['max_bin_gap']:.2f}); read them as a ranking, not as probabilities.")
    bin_rows = [[row.label, f"{row.users:,}", _percent(row.share), _number(row.mean_certainty),
                 _number(row.mean_agreement)] for row in bins.itertuples(index=False)]
    dissolved = [f"{row.segment}: {row.persona}" for row in table.itertuples(index=False)
                 if row.verdict == "dissolves"]
    return "".join([
        f"<p>Each shopper's <b>membership</b> says how sure their segment is: the share of "
        f"shoppers like them who stay in their segment when the shoppers are resampled and the "
        f"segments fitted again. KMeans was refitted on {facts['refits']} seeded samples of "
        f"{facts['refit_share']:.0%} of {escape(fitted)}, and the membership is calibrated to "
        f"what those refits kept, so that of the shoppers at 0.9 about 9 in 10 stayed. "
        f"{verdict} Below {between:g} a shopper sits <b>between personas</b>: one persona's "
        f"actions fit them only in part; {_percent(facts['between_share'])} of shoppers do.</p>",
        f"<p>{escape(_reconciled(head, facts))}</p>",
        _dissolved(dissolved, facts["dissolves_below"]),
        figure("reliability", partial(figures.reliability, bins, table,
                                      dissolves_below=facts["dissolves_below"],
                                      weak_below=facts["weak_below"]),
               "Reliability diagram of the memberships and bars of each segment's "
               "reproducibility",
               f"Left: shoppers binned by membership; each bin's mean membership against the "
               f"share of the refits that kept them in their segment ({facts['n_checked']:,} "
               f"shoppers the refits held). Right: each segment's best-match Jaccard with the "
               f"refits' clusters, averaged over the refits: below "
               f"{facts['dissolves_below']:g} it does not come back, below "
               f"{facts['weak_below']:g} it is weak."),
        _table(["membership", "shoppers", "share", "mean membership", "kept by the refits"],
               bin_rows, text_columns=(0,)),
        figure("membership", partial(figures.memberships, table, between, sure),
               "Stacked bars of each segment's shoppers by membership band",
               "Each segment's shoppers by how sure their segment is."),
        _table(["segment", "users", "mean membership", "between personas",
                f"sure (>= {sure:g})", "comes back (Jaccard)", "leans towards"], rows,
               text_columns=(0, 5, 6)),
    ])


def _reconciled(head: dict[str, Any], facts: dict[str, Any]) -> str:
    """The membership beside silhouette and stability, in words: what each one measures."""
    silhouette = head["silhouette"]
    separation = ("" if silhouette is None else
                  f"The silhouette ({silhouette:.2f}) measures how much nearer each shopper is to "
                  "their own segment than to the next one in the many dimensions of the "
                  "features: a low value says the segments border on each other, not that "
                  "shoppers change segment. ")
    seeds, resamples = head["seed_ari"], head["bootstrap_ari"]
    stability = ("" if seeds is None or resamples is None else
                 f"The stability ARIs ({seeds:.2f} across seeds, {resamples:.2f} across bootstrap "
                 "resamples) ask of the whole segmentation what the membership asks of each "
                 "shopper. ")
    return (f"{separation}{stability}The membership measures that directly: on resampling, "
            f"{facts['mean_agreement']:.0%} of the shoppers the refits held kept their segment.")


def _dissolved(segments: Sequence[str], below: float) -> str:
    if not segments:
        return ""
    listed = ", ".join(escape(s) for s in segments)
    return (f'<p class="verdict weak"><strong>Does not come back.</strong> {listed}: refits on '
            f"resampled shoppers do not find this segment again (best-match Jaccard below "
            f"{below:g}); it carries no persona name, and its shoppers' memberships are low for "
            "that reason. Do not act on it as a segment.</p>")


def _over_index(names: Sequence[str], lifts: Sequence[float]) -> str:
    """The names bought above the average shopper's rate, with their lifts, as escaped HTML."""
    above = [f"{escape(name)} ({lift:.1f}x)" for name, lift in zip(names, lifts) if lift > 1]
    return ", ".join(above) or "nothing above the average shopper"


def _map(result: SegmentationResult, names: list[str], figure: _FigureWriter) -> str:
    note, scope = content.umap_note(result), content.umap_scope(result)
    if note is None or scope is None:
        return '<p class="muted">The UMAP embedding did not run for this segmentation.</p>'
    segments = result.segments
    placed = content.placed_users(result)
    return figure("umap", partial(figures.umap_map, segments["umap_x"].to_numpy(),
                                          segments["umap_y"].to_numpy(),
                                          segments["segment"].to_numpy(), names, scope,
                                          placed=placed),
                  "UMAP scatter plot of shoppers coloured by segment",
                  f"{note}. Nearby points are shoppers with similar behaviour; colours are the "
                  "KMeans segments, which were found in the PCA space, not on this map."
                  + _placement_note(content.placement(result)))


def _placement_note(placement: dict[str, float] | None) -> str:
    """What the placed shoppers are, and whether they form a halo on the map's rim."""
    if placement is None:
        return ""
    placed, share, outer = placement["placed"], placement["placed_share"], placement["outer_ring_share"]
    note = (f" The {placed:,.0f} placed shoppers ({share:.0%} of the map) were put onto the "
            f"layout of the {placement['fitted']:,.0f} fitted ones afterwards, each near its "
            "nearest fitted shoppers (right: fitted grey, placed orange).")
    if placement["halo"]:
        return note + (f" Placed shoppers make up {outer:.0%} of the map's outer ring against "
                       f"{share:.0%} of the map: that rim of placed shoppers is an artefact of "
                       "placing them (a shopper whose nearest fitted shoppers lie apart on the "
                       "map is pushed outward by the layout), not a group of customers; read the "
                       "map's structure from the fitted shoppers.")
    return note + (f" They sit among the fitted ones ({outer:.0%} of the outer ring against "
                   f"{share:.0%} of the map).")


def _profiles(result: SegmentationResult, names: list[str], figure: _FigureWriter) -> str:
    radar = content.radar_profile(result)
    eta = content.eta_squared_table(result)
    families = content.family_importance(result)
    scope = content.importance_scope(result)
    lifts = content.top_aisle_lifts(result)
    return "".join([
        figure("radar", partial(figures.radar, radar, names, list(radar.columns)),
               "Radar charts of each segment's behavioural profile",
               "Each axis is the segment's mean minus the average shopper's, in standard deviations "
               f"of shoppers, clipped at +-{content.RADAR_Z_LIMIT:g}: the middle ring is the average "
               "shopper, the rim 2 SD above it, the centre 2 SD below."),
        figure("activity", partial(figures.activity_heatmaps, result.activity, names),
               "Heatmaps of ordering by weekday and hour per segment",
               "Share of each segment's orders by weekday and hour of day (Instacart's order_dow 0 "
               "taken as Saturday)."),
        figure("top_aisles", partial(figures.top_aisles, lifts, names),
               "Bar charts of each segment's top aisles by lift",
               "Lift: the segment's share of items in the aisle over all shoppers' share; aisles with "
               "at least 0.5% of all items."),
        figure("importance", partial(figures.importance, eta, families,
                                     clear_drop=scope["clear_drop"],
                                     majority_share=scope["majority_share"]),
               "Bar charts of the importance of each feature family",
               "Each family of features (one department's aisle shares, the cadence features, "
               "...) shuffled across shoppers, all its features together, and every shopper "
               f"({scope['n_users']:,}) assigned again through the saved model (the scaler, PCA "
               "and centroids that gpuseg assign uses). Left: the share who change segment, "
               f"mean of {scope['n_repeats']} shuffles; {scope['clear_drop']:.0%} or more is a "
               "clear drop (dark bars). Middle: the share placed in their own segment by the "
               "nearest centroid on that family's features alone; the dotted line is the largest "
               "segment's share, which putting everyone in one segment would score. A family "
               "can be enough without being needed when others carry the same information. "
               "Right: eta squared, each single feature's variance between segments."),
    ])


def _validation(result: SegmentationResult, names: list[str], head: dict[str, Any],
                figure: _FigureWriter) -> str:
    segments = result.segments
    sweep = content.k_sweep_table(result)
    fit_size, scored = content.sweep_sizes(result)
    rule, threshold = content.k_rule(result)
    stability = result.metrics.stability
    hierarchical = result.metrics.hierarchical
    rows = [
        ["silhouette", _number(head["silhouette"]), head["silhouette_scope"]],
        ["ARI across seeds", _number(stability.seed_ari_mean),
         f"mean of {len(stability.seed_aris)} pairs of {stability.n_seeds} KMeans refits "
         f"(min {_number(stability.seed_ari_min)})"],
        ["ARI across bootstrap resamples", _number(stability.bootstrap_ari_mean),
         f"{stability.n_bootstrap} refits on resampled shoppers "
         f"(min {_number(stability.bootstrap_ari_min)})"],
        ["Ward vs KMeans (ARI)", _number(hierarchical.ari_vs_kmeans),
         f"hierarchical clustering over {len(hierarchical.micro_sizes):,} micro-clusters, "
         f"cut at {len(hierarchical.sizes)}"],
        [f"{head['density_label']} outliers", _percent(head["density_outlier_share"]),
         content.density_note(result)],
    ]
    return "".join([
        _table(["measure", "value", "how"], rows, text_columns=(0, 2)),
        figure("silhouette", partial(figures.silhouette_plot, segments["silhouette"].to_numpy(),
                                     segments["segment"].to_numpy(), names, head["silhouette"]),
               "Silhouette plot per segment",
               f"Silhouette of each shopper ({head['silhouette_scope']}), sorted within its segment: "
               "near 1, well inside its segment; near 0, on a border; below 0, closer to another "
               "segment."),
        figure("k_sweep",
               partial(figures.k_sweep, sweep, elbow_k=content.elbow_k(result), chosen_k=result.k,
                       sharpness_threshold=threshold),
               "Line charts of WCSS, elbow sharpness, silhouette, Calinski-Harabasz and "
               "Davies-Bouldin against K",
               f"KMeans for each K: WCSS and elbow sharpness on {fit_size:,} shoppers, the "
               f"three indices on {scored:,} of them. "
               + (f"The rule: {rule} " if rule else "")
               + "Why this run has its K is said once, under the verdict at the top."),
        figure("dendrogram", partial(figures.dendrogram, result.linkage, result.k),
               "Dendrogram of the Ward hierarchical clustering",
               f"{hierarchical.host_step}{_ward_on_gpu(result)} The dashed line cuts the tree "
               f"into {result.k} clusters, "
               "drawn in alternate greys: they are the tree's own clusters, not the KMeans "
               "segments, so they take none of the segments' colours."),
    ])


def _ward_on_gpu(result: SegmentationResult) -> str:
    """Why a GPU run left the Ward linkage to the host (said only where a GPU ran)."""
    return (" cuML's agglomerative clustering implements single linkage only, hence the host."
            if result.backend == "gpu" else "")


def _details(result: SegmentationResult) -> str:
    timings = content.timings_table(result)
    rows = [[escape(stage), f"{seconds:.2f}"] for stage, seconds in timings.items()]
    rows.append(["<b>total</b>", f"<b>{timings.sum():.2f}</b>"])
    versions = [[escape(name), escape(str(version))]
                for name, version in result.metrics.versions.items()]
    config = "\n".join(f"{key} = {value!r}" for key, value in result.config.to_dict().items())
    return (f"<p>Backend <b>{escape(result.backend)}</b> on {escape(result.device)}; input fingerprint "
            f"<code>{escape(result.metrics.input.fingerprint)}</code>.</p>"
            '<div class="columns">'
            f"<div><h3>Seconds per stage</h3>{_table(['stage', 'seconds'], rows, escaped=True)}</div>"
            f"<div><h3>Libraries</h3>{_table(['library', 'version'], versions, escaped=True)}</div>"
            "</div>"
            f"<details><summary>Configuration</summary><pre>{escape(config)}</pre></details>")
