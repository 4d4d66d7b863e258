"""The report's figures drawn with a helper process: the same bytes, whatever happens to it."""
from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from functools import partial

import numpy as np
import pytest

from gpuseg.report import drawing, figures

NAMES = ["Night Owls", "Bulk Buyers", "Weekend Families"]


def _jobs() -> dict[str, partial]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    return {
        "sizes": partial(figures.segment_sizes, NAMES, [120, 100, 80]),
        "silhouette": partial(figures.silhouette_plot, rng.uniform(-0.2, 0.8, 300), labels, NAMES,
                              0.31),
        "umap": partial(figures.umap_map, rng.normal(size=300), rng.normal(size=300), labels, NAMES,
                        "300 shoppers"),
        "sizes_again": partial(figures.segment_sizes, NAMES, [10, 20, 30]),
        "umap_placed": partial(figures.umap_map, rng.normal(size=300), rng.normal(size=300),
                               labels, NAMES, "300 shoppers", placed=rng.random(300) < 0.5),
    }


@pytest.fixture(scope="module")
def drawn_here() -> dict[str, bytes]:
    return drawing.draw_all(_jobs(), helper=False)


def test_a_helper_draws_the_same_bytes_in_the_same_order(drawn_here, monkeypatch, caplog):
    real_png = drawing.png

    def slowly(draw):  # this process only: the helper draws at full speed
        time.sleep(1.0)
        return real_png(draw)

    monkeypatch.setattr(drawing, "png", slowly)
    with caplog.at_level(logging.DEBUG, logger=drawing.__name__):
        helped = drawing.draw_all(_jobs(), helper=True)
    assert list(helped) == list(_jobs())
    assert helped == drawn_here
    assert all(png.startswith(b"\x89PNG") for png in helped.values())
    counts = [record.args for record in caplog.records if "helper process drew" in record.msg]
    assert len(counts) == 1 and counts[0][0] >= 1


def test_without_a_helper_process_every_figure_is_drawn_here(drawn_here, monkeypatch):
    def no_processes(*args, **kwargs):
        raise OSError("Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", no_processes)
    assert drawing.draw_all(_jobs(), helper=True) == drawn_here


def test_figures_a_dying_helper_claimed_are_drawn_here(drawn_here, monkeypatch, tmp_path):
    """A helper that claims figures and dies before drawing them (killed, out of memory)."""
    dying = tmp_path / "dying_helper.py"
    dying.write_text(textwrap.dedent("""
        import os, sys
        folder = sys.argv[-1]
        for index in range(3):
            os.close(os.open(os.path.join(folder, f"{index}.claim"), os.O_CREAT | os.O_WRONLY))
        os._exit(9)
    """), encoding="utf-8")
    real_popen = subprocess.Popen

    def start_dying(command, **kwargs):
        return real_popen([sys.executable, str(dying), command[-1]], **kwargs)

    monkeypatch.setattr(subprocess, "Popen", start_dying)
    assert drawing.draw_all(_jobs(), helper=True) == drawn_here


def test_a_script_without_a_main_guard_runs_once(tmp_path):
    """The helper does not import the caller's main script again (multiprocessing's spawn would)."""
    script = tmp_path / "analysis.py"
    script.write_text(textwrap.dedent("""
        from functools import partial
        from gpuseg.report import drawing, figures
        print("analysis ran", flush=True)
        jobs = {str(i): partial(figures.segment_sizes, ["a", "b"], [i + 1, 2]) for i in range(5)}
        print(len(drawing.draw_all(jobs, helper=True)), "figures")
    """), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True,
                          timeout=120)
    assert done.stdout.splitlines() == ["analysis ran", "5 figures"]
