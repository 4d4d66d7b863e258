"""Segment rules: each segment's one or two best human-readable rules, from a shallow decision tree.

For each segment a scikit-learn decision tree of depth at most
:data:`MAX_DEPTH` learns "this segment or not" from the features of
:mod:`~gpuseg.explain.readable` (original features, department shares, the
usual order time) on a seeded host sample of shoppers. Every leaf where the
segment is the majority is a candidate rule: the conditions on its path,
with thresholds rounded to what the rule will say, merged per feature, and
pruned of any condition whose removal does not lower the rule's F1 score on
the sample. The best candidate by F1 is the segment's rule; a second joins it
when it adds at least :data:`SECOND_RULE_GAIN` of the segment that the first
misses, and most of the shoppers it adds are in the segment. Precision (the
share of the shoppers a rule picks who are in the segment) and coverage (the
share of the segment it picks) are then measured on every shopper, on the
backend.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..numerics.arrays import finite_or_none
from .readable import RuleFeature, rule_features

if TYPE_CHECKING:
    from ..backend import Backend

#: Deepest tree, so no rule has more than three conditions.
MAX_DEPTH = 3
#: A rule must be right about more than half of the shoppers it picks.
MIN_PRECISION = 0.5
#: A second rule must pick at least this share of the segment that the first rule misses.
SECOND_RULE_GAIN = 0.10
#: Smallest leaf, as a share of the sample (and at least 20 shoppers): a rule about a
#: handful of shoppers is an anecdote.
MIN_LEAF_SHARE = 0.005


@dataclass(frozen=True)
class Condition:
    """One test of a rule: ``feature op threshold`` (op ``>`` or ``<=``), in the feature's units."""

    feature: str
    label: str
    op: str
    threshold: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "label": self.label, "op": self.op,
                "threshold": self.threshold, "text": self.text}


@dataclass(frozen=True)
class Rule:
    """Conditions that pick shoppers of one segment, with how well they do it (every shopper).

    Attributes
    ----------
    conditions : tuple of Condition
        All must hold.
    precision : float
        Share of the shoppers the rule picks who are in the segment.
    coverage : float
        Share of the segment's shoppers the rule picks.
    n_matched, n_matched_in_segment : int
        Shoppers the rule picks, and those of them in the segment.
    """

    conditions: tuple[Condition, ...]
    precision: float
    coverage: float
    n_matched: int
    n_matched_in_segment: int

    def text(self, persona: str) -> str:
        """E.g. ``days between orders > 21 and canned goods share > 4% -> Bulk Pantry Stockers
        (precision 0.91, covers 78%)``."""
        conditions = " and ".join(c.text for c in self.conditions)
        return (f"{conditions} -> {persona} (precision {self.precision:.2f}, "
                f"covers {self.coverage:.0%})")

    def to_dict(self, persona: str) -> dict[str, Any]:
        return {"text": self.text(persona), "conditions": [c.to_dict() for c in self.conditions],
                "precision": self.precision, "coverage": self.coverage,
                "n_matched": self.n_matched, "n_matched_in_segment": self.n_matched_in_segment}


@dataclass(frozen=True)
class SegmentRules:
    """A segment's rules (none when no candidate reaches :data:`MIN_PRECISION`).

    Attributes
    ----------
    segment : int
    persona : str
    rules : tuple of Rule
        One or two, best first.
    precision, coverage : float
        Of the rules together (a shopper either rule picks); NaN without rules.
    n_users : int
        Shoppers in the segment.
    sample_size : int
        Shoppers the trees were fitted on.
    """

    segment: int
    persona: str
    rules: tuple[Rule, ...]
    precision: float
    coverage: float
    n_users: int
    sample_size: int

    def to_dict(self) -> dict[str, Any]:
        return {"segment": self.segment, "persona": self.persona,
                "rules": [rule.to_dict(self.persona) for rule in self.rules],
                "precision": finite_or_none(self.precision),
                "coverage": finite_or_none(self.coverage), "n_users": self.n_users,
                "tree": {"max_depth": MAX_DEPTH, "sample_size": self.sample_size}}


#: A condition while the rules are searched: (rule-feature index, op, threshold).
Test = tuple[int, str, float]


@dataclass(frozen=True)
class ChosenRules:
    """Each segment's chosen rules as tests on the rule features, before they are measured.

    ``tests[j]`` holds segment j's rules (none, one or two), each a list of
    ``(rule-feature index, op, threshold)``; ``candidates`` are the rule
    features and ``positions`` each feature column's position in the table.
    """

    tests: tuple[tuple[tuple[Test, ...], ...], ...]
    candidates: tuple[RuleFeature, ...]
    positions: Mapping[str, int]
    personas: tuple[str, ...]
    sample_size: int


def choose_rules(X: Any, labels: Any, backend: Backend, *, feature_names: Sequence[str],
                 personas: Sequence[str], aisles: Mapping[int, str],
                 departments: Mapping[int, str], aisle_department: Mapping[int, int],
                 seed: int) -> ChosenRules:
    """Each segment's one or two best rules, learnt from the shoppers ``X`` holds (see the
    module docstring for how they are found).

    Parameters
    ----------
    X : backend array, shape (n_sample, n_features)
        The rules stage's seeded sample of the per-user features (original units),
        columns in ``feature_names`` order.
    labels : backend int array, shape (n_sample,)
        Segments ``0 .. len(personas) - 1``.
    backend : Backend
    feature_names : sequence of str
    personas : sequence of str
        Name of each segment, by segment number.
    aisles, departments, aisle_department : mapping
        The catalog (names, and each aisle's department).
    seed : int
        Seeds the trees.
    """
    from sklearn.tree import DecisionTreeClassifier

    names = [str(c) for c in feature_names]
    position = {name: j for j, name in enumerate(names)}
    candidates = tuple(rule_features(names, aisles=aisles, departments=departments,
                                     aisle_department=aisle_department))
    # Host step, on both backends: scikit-learn's tree exposes the paths and thresholds the rules
    # are read from, and a depth-3 tree on a sample of this size takes a fraction of a second.
    X_sample = backend.to_numpy(X, np.float64)
    y_sample = backend.to_numpy(labels, np.int64)
    values = np.column_stack([f.values(X_sample, position, np) for f in candidates])
    min_leaf = max(20, int(MIN_LEAF_SHARE * y_sample.size))
    chosen_by_segment = []
    for segment in range(len(personas)):
        target = y_sample == segment
        chosen: list[list[Test]] = []
        if target.any() and not target.all():
            tree = DecisionTreeClassifier(max_depth=MAX_DEPTH, min_samples_leaf=min_leaf,
                                          class_weight="balanced", random_state=seed)
            tree.fit(values, target)
            chosen = _choose(_candidates(tree, candidates, values, target), values, target)
        chosen_by_segment.append(tuple(tuple(tests) for tests in chosen))
    return ChosenRules(tests=tuple(chosen_by_segment), candidates=candidates, positions=position,
                       personas=tuple(personas), sample_size=int(y_sample.size))


#: Counts per segment of :func:`rule_counts`: its shoppers, then (picked, picked in segment)
#: for each of at most two rules and for their union.
_COUNTS = 1 + 2 * 2 + 2


def rule_counts(backend: Backend, X: Any, labels: Any, chosen: ChosenRules) -> np.ndarray:
    """A block's counts for measuring the chosen rules: shape (k, 7), host (see ``_COUNTS``)."""
    xp = backend.xp
    counts = np.zeros((len(chosen.tests), _COUNTS))
    for segment, rules in enumerate(chosen.tests):
        in_segment = labels == segment
        counts[segment, 0] = int(backend.to_host(xp.count_nonzero(in_segment)))
        union = xp.zeros(in_segment.shape, dtype=bool)
        for r, tests in enumerate(rules):
            mask = _mask(tests, X, chosen, xp)
            union |= mask
            counts[segment, 1 + 2 * r] = int(backend.to_host(xp.count_nonzero(mask)))
            counts[segment, 2 + 2 * r] = int(backend.to_host(xp.count_nonzero(mask & in_segment)))
        counts[segment, 5] = int(backend.to_host(xp.count_nonzero(union)))
        counts[segment, 6] = int(backend.to_host(xp.count_nonzero(union & in_segment)))
    return counts


def measured_rules(chosen: ChosenRules, counts: np.ndarray) -> list[SegmentRules]:
    """Each segment's rules with their precision and coverage on every shopper, from
    :func:`rule_counts` summed over every user."""
    result = []
    for segment, rules in enumerate(chosen.tests):
        n_users = int(counts[segment, 0])
        measured = []
        for r, tests in enumerate(rules):
            matched, hits = int(counts[segment, 1 + 2 * r]), int(counts[segment, 2 + 2 * r])
            measured.append(Rule(conditions=tuple(_condition(test, chosen) for test in tests),
                                 precision=hits / matched if matched else float("nan"),
                                 coverage=hits / n_users if n_users else float("nan"),
                                 n_matched=matched, n_matched_in_segment=hits))
        matched, hits = int(counts[segment, 5]), int(counts[segment, 6])
        result.append(SegmentRules(segment=segment, persona=chosen.personas[segment],
                                   rules=tuple(measured),
                                   precision=hits / matched if matched else float("nan"),
                                   coverage=hits / n_users if n_users else float("nan"),
                                   n_users=n_users, sample_size=chosen.sample_size))
    return result


def _mask(tests: tuple[Test, ...], X: Any, chosen: ChosenRules, xp: Any) -> Any:
    mask = xp.ones(int(X.shape[0]), dtype=bool)
    for feature, op, threshold in tests:
        column = chosen.candidates[feature].values(X, chosen.positions, xp)
        mask &= column > threshold if op == ">" else column <= threshold
    return mask


def _condition(test: Test, chosen: ChosenRules) -> Condition:
    feature, op, threshold = test
    candidate = chosen.candidates[feature]
    return Condition(candidate.key, candidate.label, op, threshold,
                     candidate.condition(op, threshold))


def segment_rules(features: Any, labels: Any, backend: Backend, *, personas: Sequence[str],
                  aisles: Mapping[int, str], departments: Mapping[int, str],
                  aisle_department: Mapping[int, int], seed: int) -> list[SegmentRules]:
    """Each segment's rules learnt from and measured on every shopper of a table in memory
    (the rules stage learns them on its seeded sample and measures them on every user).

    Parameters
    ----------
    features : backend DataFrame
        Per-user feature table (original units).
    labels : backend int array, shape (n_users,)
    backend : Backend
    personas, aisles, departments, aisle_department, seed
        As :func:`choose_rules`.
    """
    X = backend.asarray(features, dtype="float64")
    chosen = choose_rules(X, labels, backend, feature_names=[str(c) for c in features.columns],
                          personas=personas, aisles=aisles, departments=departments,
                          aisle_department=aisle_department, seed=seed)
    return measured_rules(chosen, rule_counts(backend, X, labels, chosen))


def _leaf_paths(tree: Any) -> list[list[Test]]:
    """The conditions on the path to every leaf of a fitted scikit-learn tree."""
    structure = tree.tree_
    paths = []
    stack: list[tuple[int, list[Test]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        left, right = structure.children_left[node], structure.children_right[node]
        if left == -1:
            paths.append(path)
            continue
        feature, threshold = int(structure.feature[node]), float(structure.threshold[node])
        stack.append((right, [*path, (feature, ">", threshold)]))
        stack.append((left, [*path, (feature, "<=", threshold)]))
    return paths


def _readable(path: list[Test], candidates: Sequence[RuleFeature]) -> list[Test]:
    """Thresholds rounded as the rule will state them; one (the tightest) test per feature and op."""
    tightest: dict[tuple[int, str], float] = {}
    for feature, op, threshold in path:
        rounded = candidates[feature].rounded(threshold)
        key = (feature, op)
        if key not in tightest:
            tightest[key] = rounded
        else:
            tightest[key] = max(tightest[key], rounded) if op == ">" else min(tightest[key], rounded)
    return [(feature, op, threshold) for (feature, op), threshold in tightest.items()]


def _matches(tests: list[Test], values: np.ndarray) -> np.ndarray:
    mask = np.ones(values.shape[0], dtype=bool)
    for feature, op, threshold in tests:
        column = values[:, feature]
        mask &= column > threshold if op == ">" else column <= threshold
    return mask


def _f1(mask: np.ndarray, target: np.ndarray) -> tuple[float, float, float]:
    """F1, precision and coverage of a rule's matches on the sample."""
    hits = int(np.count_nonzero(mask & target))
    if hits == 0:
        return 0.0, 0.0, 0.0
    precision, coverage = hits / int(np.count_nonzero(mask)), hits / int(np.count_nonzero(target))
    return 2 * precision * coverage / (precision + coverage), precision, coverage


def _prune(tests: list[Test], values: np.ndarray, target: np.ndarray) -> list[Test]:
    """Drop conditions, one at a time, while dropping one does not lower the F1 score."""
    while len(tests) > 1:
        current = _f1(_matches(tests, values), target)[0]
        options = [(_f1(_matches(tests[:i] + tests[i + 1:], values), target)[0], i)
                   for i in range(len(tests))]
        best, drop = max(options, key=lambda option: (option[0], -option[1]))
        if best < current:
            break
        tests = tests[:drop] + tests[drop + 1:]
    return tests


def _candidates(tree: Any, candidates: Sequence[RuleFeature], values: np.ndarray,
                target: np.ndarray) -> list[list[Test]]:
    """Readable, pruned rules of the leaves where the segment is the majority, best F1 first."""
    found: dict[tuple[Test, ...], float] = {}
    for path in _leaf_paths(tree):
        tests = _prune(_readable(path, candidates), values, target)
        f1, precision, _ = _f1(_matches(tests, values), target)
        key = tuple(sorted(tests))
        if tests and precision > MIN_PRECISION and key not in found:
            found[key] = f1
    ranked = sorted(found.items(), key=lambda item: (-item[1], len(item[0]), item[0]))
    return [list(tests) for tests, _ in ranked]


def _choose(ranked: list[list[Test]], values: np.ndarray,
            target: np.ndarray) -> list[list[Test]]:
    """The best rule, and a second one when it picks enough of what the first misses.

    The shoppers the second rule adds (those the first does not pick) must
    themselves be mostly in the segment, so that a looser copy of the first
    rule does not join it and halve the pair's precision.
    """
    if not ranked:
        return []
    first = ranked[0]
    missed = ~_matches(first, values)
    best_gain, second = 0, None
    for tests in ranked[1:]:
        added = _matches(tests, values) & missed
        gain = int(np.count_nonzero(added & target))
        if gain > best_gain and gain > MIN_PRECISION * int(np.count_nonzero(added)):
            best_gain, second = gain, tests
    if second is not None and best_gain >= SECOND_RULE_GAIN * int(np.count_nonzero(target)):
        return [first, second]
    return [first]
