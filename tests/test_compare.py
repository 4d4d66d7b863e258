"""Comparing two runs: the migration matrix, ARI, and the users who came and went."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from _fake_result import demo_run, fake_result

from gpuseg.compare import compare_runs
from gpuseg.errors import GpusegError
from gpuseg.model import save_model
from gpuseg.model_catalog import ModelCatalog

NAMES = ("Weekly <Regulars>", "Bulk & \"Pantry\" <script>alert(1)</script>", "Night Owls")


def _run(folder, user_ids, segments, persona_names=NAMES, **model_changes):
    """A minimal run directory: segments.parquet plus a model whose persona names label the matrix."""
    folder.mkdir()
    table = pd.DataFrame({"user_id": np.asarray(user_ids, dtype=np.int64),
                          "segment": np.asarray(segments, dtype=np.int32)})
    table.to_parquet(folder / "segments.parquet")
    model = fake_result(n_users=60).model
    save_model(replace(model, persona_names=tuple(persona_names), **model_changes),
               folder / "model")
    return folder


@pytest.fixture
def labels():
    return np.random.default_rng(3).integers(0, 3, 400)


def test_a_run_compared_with_itself_is_a_diagonal_matrix_with_ari_one(tmp_path, labels):
    run = _run(tmp_path / "a", np.arange(400), labels)
    comparison = compare_runs(run, run)
    sizes = np.bincount(labels, minlength=3)
    np.testing.assert_array_equal(comparison.counts.to_numpy(), np.diag(sizes))
    np.testing.assert_array_equal(comparison.shares.to_numpy(), np.eye(3))
    assert comparison.ari == pytest.approx(1.0)
    assert comparison.n_common == 400
    assert comparison.appeared.size == 0 and comparison.left.size == 0
    assert list(comparison.counts.index) == list(NAMES) == list(comparison.counts.columns)


def test_renumbered_segments_with_users_coming_and_going(tmp_path, labels):
    """B: the same partition under other numbers, 30 users gone, 20 new ones."""
    ids = np.arange(400)
    renumber = np.array([2, 0, 1])
    new_ids = np.arange(1000, 1020)
    b_ids = np.concatenate([ids[30:], new_ids])
    b_labels = np.concatenate([renumber[labels[30:]], np.zeros(20, dtype=int)])
    comparison = compare_runs(_run(tmp_path / "a", ids, labels),
                              _run(tmp_path / "b", b_ids, b_labels, persona_names=NAMES[::-1]))
    assert comparison.ari == pytest.approx(1.0)
    assert comparison.n_common == 370
    np.testing.assert_array_equal(comparison.left, ids[:30])
    np.testing.assert_array_equal(comparison.appeared, new_ids)
    common_sizes = np.bincount(labels[30:], minlength=3)
    expected = np.zeros((3, 3), dtype=int)
    expected[np.arange(3), renumber] = common_sizes
    np.testing.assert_array_equal(comparison.counts.to_numpy(), expected)
    # B's persona names label B's columns, even though they differ from A's.
    assert list(comparison.counts.columns) == list(NAMES[::-1])


def test_shares_are_where_each_segments_users_went(tmp_path, labels):
    moved = labels.copy()
    moved[:100] = (moved[:100] + 1) % 3
    comparison = compare_runs(_run(tmp_path / "a", np.arange(400), labels),
                              _run(tmp_path / "b", np.arange(400), moved))
    assert 0 < comparison.ari < 1
    assert comparison.counts.to_numpy().sum() == 400
    np.testing.assert_allclose(comparison.shares.sum(axis=1), 1.0)
    naive = pd.crosstab(labels, moved).reindex(index=range(3), columns=range(3), fill_value=0)
    np.testing.assert_array_equal(comparison.counts.to_numpy(), naive.to_numpy())


def test_long_table_has_one_row_per_cell(tmp_path, labels):
    run = _run(tmp_path / "a", np.arange(400), labels)
    table = compare_runs(run, run).to_long()
    assert list(table.columns) == ["from_segment", "from_persona", "to_segment", "to_persona",
                                   "users", "share_of_from"]
    assert len(table) == 9 and table["users"].sum() == 400
    diagonal = table[table["from_segment"] == table["to_segment"]]
    assert (diagonal["share_of_from"] == 1.0).all()
    assert list(diagonal["from_persona"]) == list(NAMES)


def test_repeated_persona_names_are_told_apart_by_segment_number(tmp_path, labels):
    run = _run(tmp_path / "a", np.arange(400), labels, persona_names=("Owls", "Owls", "Larks"))
    assert list(compare_runs(run, run).counts.index) == ["Owls (0)", "Owls (1)", "Larks"]


def test_a_missing_run_directory_is_a_user_error(tmp_path, labels):
    run = _run(tmp_path / "a", np.arange(400), labels)
    with pytest.raises(GpusegError, match="segments.parquet is missing"):
        compare_runs(run, tmp_path / "nowhere")


def test_segment_numbers_beyond_the_model_are_refused(tmp_path):
    run = _run(tmp_path / "a", [1, 2], [0, 7])
    with pytest.raises(GpusegError, match="outside the model's 0..2"):
        compare_runs(run, run)


def test_the_demo_run_compared_with_itself(tmp_path_factory):
    run = demo_run(tmp_path_factory).run_dir
    comparison = compare_runs(run, run)
    segments = pd.read_parquet(run / "segments.parquet")
    assert comparison.ari == pytest.approx(1.0)
    np.testing.assert_array_equal(np.diag(comparison.counts.to_numpy()),
                                  np.bincount(segments["segment"]))
    assert comparison.counts.to_numpy().sum() == len(segments)


def _catalog(product_aisles, aisle_names=("fresh fruits", "yogurt", "chips")):
    n = len(product_aisles)
    return ModelCatalog(product_ids=np.arange(1, n + 1), product_aisles=np.asarray(product_aisles),
                        product_departments=np.ones(n, dtype=np.int64),
                        product_organic=np.zeros(n, dtype=bool), aisle_ids=np.arange(1, 4),
                        department_ids=np.array([1]), aisle_names=tuple(aisle_names),
                        department_names=("produce",))


def test_the_first_line_says_how_many_users_both_runs_hold_and_what_share_of_each(tmp_path,
                                                                                  labels):
    a = _run(tmp_path / "a", np.arange(400), labels)
    b = _run(tmp_path / "b", np.arange(300, 500), labels[:200])
    first = compare_runs(a, b).summary().splitlines()[0]
    assert first == "users in both runs: 100 (25.0% of A's 400, 50.0% of B's 200)"


@pytest.mark.parametrize(("b_changes", "words"), [
    ({"feature_names": tuple(f"other_{j}" for j in range(7))}, "their feature sets differ"),
    ({"catalog": _catalog([1, 2, 3, 1], aisle_names=("fruit", "yogurt", "chips"))},
     "their aisle and department taxonomies differ"),
    ({"catalog": _catalog([2, 3, 1, 1])},
     "of the 4 product ids they share, 25% sit in the same aisle"),
])
def test_runs_over_unrelated_inputs_are_refused_naming_both_unless_forced(tmp_path, labels,
                                                                          b_changes, words):
    a = _run(tmp_path / "a", np.arange(400), labels, catalog=_catalog([1, 2, 3, 1]))
    b = _run(tmp_path / "b", np.arange(400), labels, **b_changes)
    with pytest.raises(GpusegError) as refused:
        compare_runs(a, b)
    message = str(refused.value)
    assert message.startswith(f"{a} and {b} cannot be compared: ") and words in message
    assert "--force" in message
    forced = compare_runs(a, b, force=True)
    assert forced.warning is not None and words in forced.warning
    assert forced.summary().splitlines()[1].startswith("WARNING: compared with --force")


def test_catalogs_that_mostly_agree_are_compared(tmp_path, labels):
    a = _run(tmp_path / "a", np.arange(400), labels, catalog=_catalog([1, 2, 3, 1]))
    b = _run(tmp_path / "b", np.arange(400), labels, catalog=_catalog([1, 2, 3, 2, 3]))
    assert compare_runs(a, b).warning is None


def test_compare_of_unrelated_runs_exits_2_naming_both(tmp_path, labels, capsys):
    from gpuseg.cli import EXIT_USER_ERROR, main

    a = _run(tmp_path / "a", np.arange(400), labels, catalog=_catalog([1, 2, 3, 1]))
    b = _run(tmp_path / "b", np.arange(400), labels, catalog=_catalog([2, 3, 1, 1]))
    assert main(["compare", str(a), str(b)]) == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(a) in err and str(b) in err
    assert main(["compare", str(a), str(b), "--force"]) == 0
