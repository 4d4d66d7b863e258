"""Test doubles for the product layer: a hand-built SegmentationResult and one shared real run.

:func:`fake_result` builds a small, fully controlled result in well under a
second: three blobs of shoppers in a seven-feature space, a real scaler / PCA
/ KMeans fit (so the saved model reproduces its labels), and hand-written
profiles and metrics with the keys the pipeline writes. Persona names carry
HTML metacharacters so that escaping is tested everywhere they appear.

:func:`demo_run` runs ``gpuseg demo`` once per test session on a few thousand
synthetic shoppers, with a cheaper pipeline configuration, and hands every
test the same run directory and data folder.

:func:`kmeans_model` fits the saved model's pieces (scaler, PCA, KMeans) on a
data folder without the rest of the pipeline.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import linkage as ward_linkage
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_samples
from sklearn.preprocessing import StandardScaler

from cpu_fallback.backend import CpuBackend
from gpuseg.cluster import DbscanFit, HierarchicalFit, subsample_refits
from gpuseg.cluster.certainty import Certainty, certainty_summary, fit_certainty
from gpuseg.cluster.kchoice import KChoice
from gpuseg.cluster.sweep import KSweep
from gpuseg.config import PipelineConfig
from gpuseg.embed import Embedding
from gpuseg.explain import GroupedImportance
from gpuseg.explain.importance import GroupImportance
from gpuseg.explain.rules import Condition, Rule, SegmentRules
from gpuseg.facts import CatalogNames, InputFacts, UserCounts
from gpuseg.metrics import Metrics, run_metrics
from gpuseg.model import SegmentModel
from gpuseg.numerics.certainty import certainty_columns, squared_distances
from gpuseg.personas import Action, Claim, Persona
from gpuseg.personas.basket import DepartmentShare
from gpuseg.pipeline import STAGES
from gpuseg.quality import Importance, SilhouetteReport, Stability, Verdict
from gpuseg.result import SegmentationResult
from gpuseg.stages.base import Outputs
from gpuseg.stages.certainty import Certainty as CertaintyStage
from gpuseg.stages.density import Density
from gpuseg.stages.hierarchical import Hierarchical
from gpuseg.stages.importance import Explanations, FeatureImportance
from gpuseg.stages.kmeans import KMeans as KMeansStage
from gpuseg.stages.kmeans import Segmentation
from gpuseg.stages.personas import Personas, Profiles
from gpuseg.stages.rules import Rules
from gpuseg.stages.silhouette import Silhouette
from gpuseg.stages.stability import Stability as StabilityStage
from gpuseg.stages.sweep import Sweep, SweepChoice
from gpuseg.stages.umap import Umap

FEATURES = ("n_orders", "aisle_1", "aisle_2", "basket_size_mean", "days_between_mean",
            "reorder_ratio", "weekend_ratio")
#: Segment 1's name would break a page that forgot to escape it.
PERSONA_NAMES = ("Weekly <Regulars>", "Bulk & \"Pantry\" <script>alert(1)</script>", "Night Owls")


def fake_result(n_users: int = 300, *, seed: int = 0, umap_sample: int | None = 200,
                silhouette_sample: int | None = 250) -> SegmentationResult:
    """A three-segment result over ``n_users`` shoppers whose user ids are 1000, 1001, ...

    Users outside ``umap_sample`` (``silhouette_sample``) have NaN UMAP
    coordinates (silhouette), as the pipeline leaves them.
    """
    X = fake_features(n_users, seed=seed).to_numpy()
    rng = np.random.default_rng(seed + 1)
    scaler = StandardScaler().fit(X)
    X_scaled = scaler.transform(X)
    pca = PCA(n_components=3, svd_solver="full").fit(X_scaled)
    X_pca = pca.transform(X_scaled)
    kmeans = KMeans(3, n_init=4, random_state=seed).fit(X_pca)
    labels = kmeans.labels_.astype(np.int32)
    k = 3

    certainty = _certainty(X_pca, labels, kmeans.cluster_centers_, seed=seed)
    silhouette = silhouette_samples(X_pca, labels)
    silhouette[_outside(n_users, silhouette_sample, rng)] = np.nan
    umap = X_pca[:, :2] + rng.normal(0, 0.05, (n_users, 2))
    umap[_outside(n_users, umap_sample, rng)] = np.nan
    dbscan = labels.copy()
    dbscan[rng.choice(n_users, n_users // 20, replace=False)] = -1
    segments = pd.DataFrame({
        "user_id": np.arange(1000, 1000 + n_users, dtype=np.int64),
        "segment": labels,
        "persona": pd.Categorical.from_codes(labels, categories=list(PERSONA_NAMES)),
        "membership": certainty.membership,
        "second_segment": certainty.second_segment,
        "second_membership": certainty.second_membership,
        "silhouette": silhouette,
        "hierarchical": labels,
        "dbscan": dbscan.astype(np.int32),
        "umap_x": umap[:, 0],
        "umap_y": umap[:, 1],
    })
    model = SegmentModel(feature_names=FEATURES, scaler_mean=scaler.mean_, scaler_scale=scaler.scale_,
                         pca_mean=pca.mean_, pca_components=pca.components_,
                         centroids=kmeans.cluster_centers_, persona_names=PERSONA_NAMES, min_orders=3,
                         certainty=certainty.params)
    sizes = np.bincount(labels, minlength=k)
    profiles = _profiles(X, labels, sizes)
    micro_centres = np.array([X_pca[labels == j][:8] for j in range(k)]).reshape(-1, 3)
    linkage = ward_linkage(micro_centres, "ward")
    metrics = _metrics(n_users, labels, sizes, silhouette, umap, dbscan.astype(np.int32), certainty,
                       micro_centres, linkage)
    return SegmentationResult(
        segments=segments, profiles=profiles, metrics=metrics,
        timings={"load": 0.5, "features": 1.25, "kmeans": 0.25, "umap": 2.0}, model=model,
        linkage=linkage,
        activity=rng.integers(0, 30, (k, 7, 24)).astype(np.int64),
        backend="cpu", device="CPU: test double (2 cores)",
        config=PipelineConfig(backend="cpu", min_orders=3, k=3),
        personas=tuple(metrics.personas.personas))


def with_output(result: SegmentationResult, stage: type, output: object | None,
                **changes: object) -> SegmentationResult:
    """``result`` with one stage's output replaced (``None``: as if the stage had not run), its
    metrics rebuilt from the outputs, and other fields ``changes``."""
    metrics = result.metrics
    outputs = Outputs()
    for kind, value in metrics.outputs:
        if kind is not stage:
            outputs.add(kind, value)
    if output is not None:
        outputs.add(stage, output)
    rebuilt = run_metrics(STAGES, outputs, backend=metrics.backend, device=metrics.device,
                          versions=metrics.versions, config=metrics.config, input=metrics.input,
                          catalog=metrics.catalog, users=metrics.users,
                          distributed=metrics.distributed)
    return dataclasses.replace(result, metrics=dataclasses.replace(rebuilt, verdict=metrics.verdict),
                               **changes)


def format3_model(result: SegmentationResult) -> SegmentModel:
    """``result``'s model as a format-3 run saved it: a Gaussian mixture (fitted here by
    scikit-learn from the centroids) in place of the certainty."""
    from sklearn.mixture import GaussianMixture

    from gpuseg.model import project_features
    from gpuseg.numerics.mixture import MixtureParams

    model = result.model
    X = project_features(model, fake_features(len(result.segments)), CpuBackend())
    mixture = GaussianMixture(model.k, covariance_type="full", random_state=0,
                              means_init=model.centroids).fit(X)
    return dataclasses.replace(model, certainty=None, mixture=MixtureParams(
        covariance_type="full", basis=np.eye(X.shape[1]), weights=mixture.weights_,
        means=mixture.means_, precisions_cholesky=mixture.precisions_cholesky_))


def fake_features(n_users: int = 300, *, seed: int = 0) -> pd.DataFrame:
    """The feature table :func:`fake_result` was fitted on (index: user_id 1000, 1001, ...)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[10, 0.6, 0.1, 8, 7, 0.7, 0.2],
                        [25, 0.2, 0.5, 30, 20, 0.5, 0.3],
                        [6, 0.3, 0.3, 5, 10, 0.3, 0.8]])
    truth = rng.integers(0, 3, n_users)
    X = centres[truth] * rng.normal(1.0, 0.08, (n_users, len(FEATURES)))
    return pd.DataFrame(X, columns=list(FEATURES),
                        index=pd.Index(np.arange(1000, 1000 + n_users), name="user_id"))


def _certainty(X: np.ndarray, labels: np.ndarray, centres: np.ndarray, *, seed: int) -> Certainty:
    """The certainty stage's output, fitted on every user as the stage fits its sample."""
    refits = subsample_refits(X, labels.astype(np.int64), CpuBackend(), k=len(centres), n_init=2,
                              seed=seed, n_refits=3)
    params = fit_certainty(squared_distances(X, centres, xp=np), labels, refits.kept, refits.seen)
    own, second, second_p = certainty_columns(X, labels, centres, params, xp=np)
    return Certainty(membership=own, second_segment=second, second_membership=second_p,
                     params=params, refits=refits, fit_positions=None, n_fit=len(X),
                     n_users=len(X), **certainty_summary(own, labels.astype(np.int64), refits,
                                                         own, len(centres)))


def _outside(n: int, sample: int | None, rng: np.random.Generator) -> np.ndarray:
    """Rows outside a sample of ``sample`` of ``n`` (none when ``sample`` is None or >= n)."""
    outside = np.zeros(n, dtype=bool)
    if sample is not None and sample < n:
        outside[rng.choice(n, n - sample, replace=False)] = True
    return outside


def _profiles(X: np.ndarray, labels: np.ndarray, sizes: np.ndarray) -> pd.DataFrame:
    means = pd.DataFrame(X, columns=FEATURES).groupby(labels).mean()
    z = (means - X.mean(axis=0)) / X.std(axis=0)
    aisles = [["fresh fruits", "yogurt"], ["canned <goods>", "pasta"], ["frozen meals", "chips"]]
    departments = [["produce", "deli"], ["pantry & canned"], ["frozen"]]
    table = pd.DataFrame({
        "segment": np.arange(3), "size": sizes, "share": sizes / sizes.sum(),
        **{f: means[f].to_numpy() for f in FEATURES if not f.startswith("aisle_")},
        "preferred_hour": [9, 14, 22], "hour_shift": [-4.0, 1.0, 9.0],
        "weekend_share": means["weekend_ratio"].to_numpy(),
        "top_aisles": aisles, "top_aisle_lifts": [[2.5, 1.75], [3.0, 2.0], [4.0, 1.5]],
        "top_departments": departments, "top_department_lifts": [[1.5, 0.9], [2.25], [3.5]],
        **{f"z_{f}": z[f].to_numpy() for f in FEATURES if not f.startswith("aisle_")},
    })
    return table.assign(persona=list(PERSONA_NAMES))


def _metrics(n_users: int, labels: np.ndarray, sizes: np.ndarray, silhouette: np.ndarray,
             umap: np.ndarray, dbscan: np.ndarray, certainty, micro_centres: np.ndarray,
             linkage: np.ndarray) -> Metrics:
    """Typed metrics of every stage, with hand-written numbers and texts that need escaping."""
    per_cluster = {j: float(np.nanmean(silhouette[labels == j])) for j in range(3)}
    scored = int(np.isfinite(silhouette).sum())
    n_embedded = int(np.isfinite(umap[:, 0]).sum())
    outputs = Outputs()
    sweep = KSweep(ks=(2, 3, 4, 5), inertia=(900.0, 400.0, 350.0, 320.0),
                   silhouette=(0.4, 0.62, 0.5, float("nan")),
                   calinski_harabasz=(300.0, 500.0, 420.0, 380.0),
                   davies_bouldin=(0.9, 0.55, 0.8, 0.85), elbow_k=3, wcss_k1=2100.0,
                   sample_size=n_users, n_users=n_users, fit_size=n_users)
    outputs.add(Sweep, SweepChoice(sweep=sweep, choice=KChoice(
        k=3, reason="K=3 has the best silhouette (0.620) in 3-8.", wcss_reduction=1 - 400 / 2100,
        source="auto")))
    outputs.add(KMeansStage, Segmentation(labels=None, host_labels=labels, centroids=np.zeros((3, 3)),
                                          inertia=400.0, sizes=tuple(int(s) for s in sizes),
                                          total_ss=2100.0, fit_size=n_users, lloyd_iterations=0))
    outputs.add(CertaintyStage, certainty)
    outputs.add(Silhouette, SilhouetteReport(overall=float(np.nanmean(silhouette)),
                                             per_cluster=per_cluster, sample_size=scored,
                                             per_user=silhouette, n_scored=scored))
    outputs.add(StabilityStage, Stability(
        seed_ari_mean=0.98, seed_ari_min=0.95, seed_aris=(0.95, 1.0, 0.99),
        bootstrap_ari_mean=0.93, bootstrap_ari_min=0.9, bootstrap_aris=(0.9, 0.96), n_seeds=3,
        n_bootstrap=2, sample_size=n_users))
    outputs.add(Hierarchical, HierarchicalFit(
        labels=labels, linkage=linkage, micro_sizes=tuple([n_users // 24] * 24),
        micro_labels=labels, micro_centres=micro_centres, ari_vs_kmeans=0.97,
        host_step="Ward ran on the host.", sizes=tuple(int(s) for s in sizes)))
    outputs.add(Density, DbscanFit(labels=dbscan, eps=0.5, eps_source="given", n_clusters=3,
                                   outlier_share=0.05, n_fit=n_users, core_assignment=None,
                                   core=np.arange(n_users - 30)))
    personas = [Persona(segment=j, name=PERSONA_NAMES[j],
                        rule=Claim("rule", PERSONA_NAMES[j], PERSONA_NAMES[j], f"rule <{j}>"),
                        actions=tuple(Action(f"trigger {key}", text, Claim(
                            "trigger", "basket_size_mean", "items per order", f"fact <{j}{key}>"))
                                      for key, text in (("a", f"action <{j}a>"),
                                                        ("b", f"action {j}b & more"))),
                        evidence=(Claim("feature", "dept_entropy", "department variety",
                                        f"evidence {j}"),), matched=True, score=1.0, scores={},
                        basket=(DepartmentShare(department=f"<dept {j}>", share=0.066,
                                                population_share=0.02, lift=3.3, named=True),))
                for j in range(3)]
    outputs.add(Personas, Profiles(profiles=pd.DataFrame(), personas=personas,
                                   activity=np.zeros((3, 7, 24), dtype=np.int64)))
    groups = (GroupImportance(name="basket size", kind="behaviour", features=("basket_size_mean",),
                              drop=0.31, drop_std=0.01, alone_accuracy=0.8),
              GroupImportance(name="<produce> aisles", kind="department",
                              features=("aisle_1", "aisle_2"), drop=0.02, drop_std=0.005,
                              alone_accuracy=0.45))
    outputs.add(FeatureImportance, Explanations(
        importance=Importance(eta_squared={f: 0.1 * (i + 1) for i, f in enumerate(FEATURES)},
                              top_overall=tuple(FEATURES[::-1]), top_per_segment={}),
        grouped=GroupedImportance(groups=groups, base_accuracy=1.0, majority_share=0.4,
                                  n_users=n_users, n_repeats=3),
        sample_size=n_users))
    outputs.add(Rules, [SegmentRules(
        segment=j, persona=PERSONA_NAMES[j], rules=(Rule(
            conditions=(Condition("days_between_mean", "days between orders", ">", 19.0,
                                  f"days <between> orders > {19 + j}"),),
            precision=0.9 - 0.1 * j, coverage=0.8, n_matched=10, n_matched_in_segment=9),),
        precision=0.9 - 0.1 * j, coverage=0.8, n_users=int(sizes[j]), sample_size=250)
        for j in range(3)])
    outputs.add(Umap, Embedding(coords=umap, sample_size=n_embedded if n_embedded < n_users else None,
                                fit_sample_size=120 if n_embedded > 120 else None,
                                trustworthiness=0.91, trustworthiness_sample=n_embedded,
                                n_neighbors=15, min_dist=0.1))
    metrics = run_metrics(STAGES, outputs, backend="cpu", device="CPU: test double (2 cores)",
                          versions={"numpy": np.__version__, "pandas": pd.__version__},
                          config=PipelineConfig(backend="cpu", min_orders=3, k=3),
                          input=InputFacts(source="/data/<fake>", fingerprint="f00d", cleaning={}),
                          catalog=CatalogNames(aisles={1: "fresh fruits", 2: "yogurt"},
                                               departments={}, aisle_department={}),
                          users=UserCounts(with_history=n_users + 20, excluded_min_orders=20,
                                           segmented=n_users),
                          distributed=None)
    return dataclasses.replace(metrics, verdict=Verdict(
        strength="strong", text="Strong segmentation <b>not bold</b>.", separation="strong",
        stability="strong"))


# -- one real run per session ---------------------------------------------------------------------

#: Small enough for two cores, large enough for every stage to have something to do.
DEMO_USERS = 2_500
#: The demo's pipeline with fewer refits: the same stages, a fraction of the KMeans work.
FAST_CONFIG = dict(k=4, k_sweep_range=(3, 5), k_business_range=(3, 5), n_init=2, stability_seeds=2,
                   bootstrap_rounds=1, hierarchical_micro_clusters=200, sweep_sample=1_000,
                   umap_sample=1_000, umap_fit_sample=600)


@dataclass(frozen=True)
class DemoRun:
    """What ``gpuseg demo`` left behind: the run directory, its data folder and what it printed."""

    run_dir: Path
    data_dir: Path
    exit_code: int
    stdout: str


_demo_run: DemoRun | None = None


def demo_run(tmp_path_factory) -> DemoRun:
    """Run ``gpuseg demo`` once per session (later calls return the same run)."""
    global _demo_run
    if _demo_run is None:
        from gpuseg import cli
        from gpuseg.cli import run_commands

        root = tmp_path_factory.mktemp("demo")
        run_dir = root / "demo-run"
        stdout = io.StringIO()
        config = mock.patch.object(run_commands, "demo_config",
                                   lambda backend, seed: PipelineConfig(backend=backend.name,
                                                                        seed=seed,
                                                                        **FAST_CONFIG))
        with config, contextlib.redirect_stdout(stdout):
            code = cli.main(["demo", "--out", str(run_dir), "--users", str(DEMO_USERS),
                             "--backend", "cpu", "--quiet"])
        _demo_run = DemoRun(run_dir=run_dir, data_dir=root / "demo-run-data", exit_code=code,
                            stdout=stdout.getvalue())
    return _demo_run


def kmeans_model(data_dir: Path, backend: CpuBackend, *, k: int, n_init: int, seed: int,
                 persona_names: tuple[str, ...]) -> tuple[pd.DataFrame, np.ndarray, SegmentModel]:
    """The features of ``data_dir`` (users with 5 orders or more), their KMeans labels and a
    saved model of scaler, PCA and centroids, fitted without the validation stages (seconds,
    not a whole run; the GPU check bills CPU time as device time)."""
    from gpuseg.cluster import fit_kmeans
    from gpuseg.data import load_instacart
    from gpuseg.features import compute_features
    from gpuseg.preprocess import preprocess

    table = compute_features(load_instacart(data_dir, backend=backend), backend,
                             min_orders=5).table
    prep = preprocess(table, backend)
    km = fit_kmeans(prep.X_pca, backend, k=k, n_init=n_init, seed=seed)
    scaler, pca = prep.scaler_params(), prep.pca_params()
    model = SegmentModel(feature_names=prep.feature_names, scaler_mean=scaler["mean"],
                         scaler_scale=scaler["scale"], pca_mean=pca["mean"],
                         pca_components=pca["components"],
                         centroids=backend.to_numpy(km.centroids, np.float64),
                         persona_names=persona_names, min_orders=5, feature_cap=scaler["cap"])
    return table, backend.to_numpy(km.labels), model
