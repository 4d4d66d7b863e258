"""The HTML report: self-contained, escaped, complete, and rendering cleanly in headless Chromium."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from _fake_result import PERSONA_NAMES, demo_run, fake_result, with_output

from gpuseg.cluster import HdbscanFit
from gpuseg.report import figures, write_report
from gpuseg.report.content import placement, radar_profile
from gpuseg.stages.density import Density
from gpuseg.stages.umap import Umap

FIGURE_NAMES = ("activity", "dendrogram", "importance", "k_sweep", "membership", "radar",
                "reliability", "silhouette", "sizes", "top_aisles", "umap")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def fake():
    return fake_result()


@pytest.fixture(scope="module")
def fake_report(fake, tmp_path_factory) -> Path:
    return write_report(fake, tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def page(fake_report) -> str:
    return fake_report.read_text(encoding="utf-8")


def test_every_figure_is_written_as_png_and_embedded_with_the_same_bytes(fake_report, page):
    folder = fake_report.parent / "figures"
    assert sorted(p.stem for p in folder.iterdir()) == sorted(FIGURE_NAMES)
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert len(sources) == len(FIGURE_NAMES)
    embedded = {base64.b64decode(s.removeprefix("data:image/png;base64,")) for s in sources}
    for name in FIGURE_NAMES:
        png = (folder / f"{name}.png").read_bytes()
        assert png.startswith(PNG_MAGIC)
        assert png in embedded, name


def test_the_page_references_nothing_outside_itself(page):
    for url in re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', page):
        assert url.startswith("data:image/png;base64,"), url
    assert not re.search(r"https?://|<link\b|@import|url\(", page)
    assert len(re.findall(r"<script\b", page)) == 1


def test_the_content_security_policy_allows_only_the_pages_own_script(page):
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)
    assert "default-src &#x27;none&#x27;" in policy
    assert f"script-src &#x27;sha256-{digest}&#x27;" in policy


def test_text_from_the_run_is_escaped(page):
    assert "<script>alert(1)</script>" not in page
    assert "Bulk &amp; &quot;Pantry&quot; &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Weekly &lt;Regulars&gt;" in page
    assert "<b>not bold</b>" not in page and "&lt;b&gt;not bold&lt;/b&gt;" in page
    assert "canned &lt;goods&gt;" in page and "action &lt;0a&gt;" in page
    assert "/data/&lt;fake&gt;" in page


def test_the_headline_shows_the_verdict_and_the_key_numbers(fake, page):
    header = page[page.index("<header>"):page.index("</header>")]
    assert "Verdict: strong" in header
    silhouette = fake.metrics.silhouette.overall
    for shown in ("300", "shoppers segmented", "20 excluded", f"{silhouette:.3f}", "0.980", "0.930",
                  f"{1 - 400 / 2100:.1%}", "WCSS reduction", "DBSCAN outliers", "4.0 s", "CPU",
                  "CPU: test double (2 cores)"):
        assert shown in header, shown
    assert f"{fake.metrics.density.outlier_share:.1%}" in header
    assert f"{fake.metrics.certainty.between_share:.1%}" in header
    assert "between personas (membership below 0.6)" in header


def test_how_sure_each_assignment_is_shown_per_segment(fake, page):
    section = page[page.index("<h2>How sure is each assignment</h2>"):]
    section = section[:section.index("</section>")]
    segments = fake.segments
    for j in range(3):
        users = segments[segments["segment"] == j]
        assert f"{users['membership'].mean():.2f}" in section
        assert f"{(users['membership'] < 0.6).mean():.1%}" in section
    assert "between personas" in section and "leans towards" in section
    assert "refitted on 3 seeded samples of 80%" in section
    for row in fake.metrics.certainty.reliability.bins:
        if row.users:
            assert f"{row.mean_certainty:.2f}" in section and f"{row.mean_agreement:.2f}" in section
    for comes_back in fake.metrics.certainty.segments:
        assert f"{comes_back.reproducibility:.2f} ({comes_back.verdict})" in section

def test_samples_are_stated_where_figures_use_them(page):
    assert "UMAP of a seeded sample of 200 of 300 users" in page
    assert ("layout fitted on a seeded 120 of them, the others placed with the fitted model's "
            "transform; trustworthiness 0.910 (on 200 of them)") in page.replace("&#x27;", "'")
    assert "Silhouette of each shopper (a seeded sample of 250 users)" in page


def test_every_persona_appears_with_its_actions_and_top_aisles(fake, page):
    personas = page[page.index('<div class="personas">'):]
    for j in range(len(PERSONA_NAMES)):
        assert f"<h3>{j}: " in personas
        assert f"action {j}b &amp; more" in personas
    assert "fresh fruits (2.5x)" in personas and "frozen (3.5x)" in personas
    # A top department bought less than average is no "over-buy".
    assert "produce (1.5x)" in personas and "deli (0.9x)" not in personas


def test_each_persona_card_shows_its_rules_and_the_shares_behind_its_name(page):
    personas = page[page.index('<div class="personas">'):]
    cards = personas.split('<div class="persona"')[1:]
    for j, card in enumerate(cards):
        # The words as read (a plain label carries its technical name on hover, in a tag).
        card = re.sub(r"<[^>]+>", "", card)
        assert f"days &lt;between&gt; orders &gt; {19 + j} (precision {0.9 - 0.1 * j:.2f}, " \
               "covers 80%)" in card
        # Why this name: the department it rests on, its share, the average shopper's, the lift.
        assert f"&lt;dept {j}&gt;" in card and "6.6%" in card and "2.0%" in card
        assert "3.30x" in card
    assert "seeded sample of 250 shoppers" in page


def test_the_page_says_so_when_umap_did_not_run(tmp_path, monkeypatch):
    # Only the text matters here: skip rasterising the other figures.
    monkeypatch.setattr(figures, "to_png", lambda figure: PNG_MAGIC)
    result = fake_result(n_users=120, umap_sample=None, silhouette_sample=None)
    without_map = with_output(result, Umap, None,
                              segments=result.segments.drop(columns=["umap_x", "umap_y"]))
    page = write_report(without_map, tmp_path).read_text()
    assert "The UMAP embedding did not run" in page
    assert not (tmp_path / "figures" / "umap.png").exists()


def _hdbscan_page(fake, tmp_path, monkeypatch, *, outliers: bool, **fit) -> str:
    """The report of ``fake`` as if HDBSCAN had run in place of DBSCAN, with ``fit``'s
    metrics (every user an outlier when ``outliers``)."""
    monkeypatch.setattr(figures, "to_png", lambda figure: PNG_MAGIC)
    segments = fake.segments.rename(columns={"dbscan": "hdbscan"})
    if outliers:
        segments = segments.assign(hdbscan=-1)
    hdbscan = HdbscanFit(labels=segments["hdbscan"].to_numpy(), min_cluster_size=50, min_samples=5,
                         n_fit=250, **fit)
    return write_report(with_output(fake, Density, hdbscan, segments=segments),
                        tmp_path).read_text()


def test_an_hdbscan_run_reports_hdbscan_in_place_of_dbscan(fake, tmp_path, monkeypatch):
    page = _hdbscan_page(fake, tmp_path, monkeypatch, outliers=False, n_clusters=2,
                         outlier_share=0.125,
                         assignment="HDBSCAN ran on a seeded sample of 250 users")
    header = page[page.index("<header>"):page.index("</header>")]
    assert "HDBSCAN outliers" in header and "12.5%" in header
    assert "DBSCAN outliers" not in page.replace("HDBSCAN outliers", "")
    assert "2 cluster(s) of varying density (min_cluster_size 50, min_samples 5)" in page
    assert "HDBSCAN ran on a seeded sample of 250 users" in page
    assert "no dense group" not in page


def test_density_without_dense_groups_says_what_the_outliers_mean(fake, tmp_path, monkeypatch):
    page = _hdbscan_page(fake, tmp_path, monkeypatch, outliers=True, n_clusters=0,
                         outlier_share=1.0, assignment=None)
    assert "100.0%" in page[page.index("<header>"):page.index("</header>")]
    assert "0 cluster(s) of varying density" in page
    assert "Most shoppers sit in no dense group" in page
    assert "smaller min_cluster_size or min_samples would look for smaller groups" in page


def test_radar_values_put_the_average_shopper_on_the_middle_ring(fake):
    radar = radar_profile(fake)
    assert list(radar.columns) == ["orders", "basket size", "days between", "reorder rate",
                                    "weekend"]
    assert ((radar >= 0) & (radar <= 1)).all().all()
    z = fake.profiles["z_basket_size_mean"].to_numpy()
    np.testing.assert_allclose(radar["basket size"], (np.clip(z, -2, 2) + 2) / 4)


def test_silhouette_plot_leaves_out_users_outside_the_sample():
    silhouette = np.array([0.5, np.nan, 0.2, 0.9, np.nan, -0.1])
    labels = np.array([0, 0, 1, 1, 1, 0])
    figure = figures.silhouette_plot(silhouette, labels, ["a", "b"], overall=0.375)
    assert "(4 users)" in figure.axes[0].get_title()


def test_dendrogram_cut_line_separates_the_last_k_minus_one_merges(fake):
    figure = figures.dendrogram(fake.linkage, k=3)
    cut = [line for line in figure.axes[0].get_lines() if line.get_linestyle() == "--"][0]
    height = cut.get_ydata()[0]
    merges = np.sort(fake.linkage[:, 2])
    assert merges[-3] < height < merges[-2]


# -- headless Chromium ----------------------------------------------------------------------------

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
                  "--hide-scrollbars")


@dataclass(frozen=True)
class Rendered:
    dom: str
    console: list[str]

    @property
    def body(self) -> str:
        return re.search(r"<body[^>]*>", self.dom).group(0)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; CI must install it (see .ci/run)")
        pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")
    return path


def _chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    profile.mkdir()
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=True)


def render(chromium: str, page: Path, workdir: Path) -> Rendered:
    """The DOM after load, and every console message (errors, uncaught exceptions, CSP refusals)."""
    done = _chromium(chromium, workdir / "profile-dom", "--dump-dom", page.as_uri())
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return Rendered(dom=done.stdout, console=console)


@pytest.mark.browser
def test_the_demo_report_renders_every_image_without_console_errors(chromium, tmp_path_factory,
                                                                     tmp_path):
    report = demo_run(tmp_path_factory).run_dir / "report.html"
    rendered = render(chromium, report, tmp_path)
    assert rendered.console == []
    assert 'data-images-ok="true"' in rendered.body
    assert f'data-image-count="{len(FIGURE_NAMES)}"' in rendered.body
    assert "Shopper segmentation report" in rendered.dom

    screenshot = tmp_path / "report.png"
    _chromium(chromium, tmp_path / "profile-shot", "--window-size=1200,3000",
              f"--screenshot={screenshot}", report.as_uri())
    png = screenshot.read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 50_000


@pytest.mark.browser
def test_the_browser_check_catches_a_broken_image_and_a_script_error(chromium, page, tmp_path):
    """The harness itself: a tampered report must fail both checks the real one passes."""
    broken_image = re.sub(r"base64,[^\"]{20}", "base64,AAAAnotapng", page, count=1)
    injected = broken_image.replace("</main>", "<script>undefinedFunction();</script></main>")
    tampered = tmp_path / "tampered.html"
    tampered.write_text(injected, encoding="utf-8")
    rendered = render(chromium, tampered, tmp_path)
    assert 'data-images-ok="false"' in rendered.body
    assert rendered.console, "the injected script was neither blocked nor reported"


#: Opens every <details>, then lists each element whose box leaves its parent's (a parent that
#: scrolls or clips, like a <pre>, holds its overflow by design) and whether the page scrolls
#: sideways; the result goes on <body> for --dump-dom to carry out.
_OVERFLOW_CHECK = """<script>
window.addEventListener("load", () => {
  document.querySelectorAll("details").forEach((d) => { d.open = true; });
  const wide = [];
  for (const e of document.querySelectorAll("body *")) {
    const parent = e.parentElement;
    if (!parent || getComputedStyle(parent).overflowX !== "visible") continue;
    const r = e.getBoundingClientRect(), p = parent.getBoundingClientRect();
    if (r.width > 0 && (r.right > p.right + 1 || r.left < p.left - 1)) {
      wide.push(`${e.tagName}.${e.className} ${Math.round(r.width)}px in ` +
                `${parent.tagName}.${parent.className} ${Math.round(p.width)}px: ` +
                e.textContent.slice(0, 60));
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) wide.push("the page scrolls");
  document.body.setAttribute("data-overflow", wide.length ? wide.join(" | ") : "none");
});
</script>"""


def overflowing(chromium: str, page: str, width: int, workdir: Path) -> str:
    """What leaves its container when ``page`` is laid out ``width`` px wide ("none": nothing)."""
    # The page's own policy admits only its own script: drop it in this copy to run the check.
    checked = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    copy = workdir / f"overflow-{width}.html"
    copy.write_text(checked.replace("</body>", _OVERFLOW_CHECK + "</body>"), encoding="utf-8")
    done = _chromium(chromium, workdir / f"profile-{width}-{len(page)}",
                     f"--window-size={width},2000", "--dump-dom", copy.as_uri())
    found = re.search(r'data-overflow="([^"]*)"', done.stdout)
    assert found, "the overflow check did not run"
    return found.group(1)


@pytest.mark.browser
@pytest.mark.parametrize("width", [1400, 800])
def test_nothing_in_the_report_is_wider_than_its_container(chromium, tmp_path_factory, tmp_path,
                                                           width):
    report = demo_run(tmp_path_factory).run_dir / "report.html"
    page = report.read_text(encoding="utf-8")
    assert overflowing(chromium, page, width, tmp_path) == "none"
    # The check itself: a table too wide for its card is caught.
    wide = page.replace("<details><summary>Why this name</summary>",
                        '<details><summary>Why this name</summary><table><tr><td>'
                        + "x" * 400 + "</td></tr></table>", 1)
    assert "TABLE" in overflowing(chromium, wide, width, tmp_path)


def _placed_map(fake, *, ring: bool):
    """``fake`` (300 users) with a map whose layout was fitted on 200 of them, spread over a unit
    disc; the other 100 placed on a ring well outside it (``ring``) or among the fitted ones."""
    n = len(fake.segments)
    angle = np.linspace(0, 2 * np.pi * 37, n, endpoint=False)
    radius = np.sqrt(np.linspace(0.0, 1.0, n))
    fitted = np.flatnonzero(np.arange(n) % 3 != 0)
    if ring:
        radius[np.arange(n) % 3 == 0] = 3.0
    x, y = radius * np.cos(angle), radius * np.sin(angle)
    umap = fake.metrics.umap
    embedding = dataclasses.replace(umap, coords=np.column_stack([x, y]), sample_size=None,
                                    fit_sample_size=fitted.size, fitted=fitted)
    return with_output(fake, Umap, embedding, segments=fake.segments.assign(umap_x=x, umap_y=y))


@pytest.mark.parametrize("ring", [True, False])
def test_the_map_says_what_its_placed_shoppers_are_and_whether_they_make_a_halo(fake, ring):
    result = _placed_map(fake, ring=ring)
    found = placement(result)
    assert (found["fitted"], found["placed"]) == (200, len(fake.segments) - 200)
    assert found["halo"] == (1.0 if ring else 0.0)
    page = write_report(result, Path(tempfile.mkdtemp())).read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    placed = len(fake.segments) - 200
    assert (f"The {placed} placed shoppers ({placed / len(fake.segments):.0%} of the map) were put "
            "onto the layout of the 200 fitted ones afterwards") in text
    assert ("that rim of placed shoppers is an artefact of placing them" in text) is ring


def test_why_this_k_is_said_once(fake, page):
    reason = fake.metrics.sweep.choice.reason
    assert page.count(html.escape(reason)) == 1


def test_a_cpu_run_has_no_caption_about_cuml_and_a_glossary_of_its_terms(page):
    assert "cuML" not in page
    glossary = page[page.index('<dl class="glossary">'):]
    for term in ("WCSS", "ARI", "eta squared", "reproducibility", "silhouette", "lift", "membership",
                 "second segment", "between personas"):
        assert f"<dt>{term}" in glossary, term


def test_the_dendrogram_takes_none_of_the_segments_colours(fake):
    from matplotlib.colors import to_hex

    figure = figures.dendrogram(fake.linkage, k=3)
    drawn = {to_hex(color) for collection in figure.axes[0].collections
             for color in collection.get_colors()}
    assert drawn and not drawn & {to_hex(c) for c in figures.segment_colors(3)}
