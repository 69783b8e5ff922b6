"""Where every stage writes: the one module that computes result paths, all under
<results_dir>/. A stage asks it for its paths; the stage table (bench.stagetable) declares
them to DVC through the same functions, so a path is written once. `python -m bench dvc
--help` and docs/outputs.md list what each stage writes. The content-addressed caches
(<results_dir>/cache/<kind>/: detections, embeddings, features) are shared by every stage
and cell, written atomically, and never a DVC output.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from bench.errors import BenchError


def results_root(cfg: DictConfig) -> Path:
    return Path(cfg.results_dir)


def cache_dir(results_dir: Path | str, kind: str) -> Path:
    """<results_dir>/cache/<kind>: content-addressed entries (file name = content hash), each
    written atomically, so concurrent stages and cells share them safely."""
    return Path(results_dir) / "cache" / kind


# ---- a dataset's files ---------------------------------------------------------------------

@dataclass(frozen=True)
class DatasetLayout:
    """<results_dir>/<dataset>/: the faces stage's inventory, the query stage's targets."""

    results_dir: Path
    name: str

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "DatasetLayout":
        return cls(Path(cfg.results_dir), str(cfg.dataset.name))

    @property
    def root(self) -> Path:
        return self.results_dir / self.name

    @property
    def faces(self) -> Path:
        """One row per detected face (bench.facetable schema)."""
        return self.root / "faces.parquet"

    @property
    def photos(self) -> Path:
        """One row per file of the dataset: the data manifest."""
        return self.root / "photos.csv"

    @property
    def failures(self) -> Path:
        return self.root / "failures.csv"

    @property
    def crops(self) -> Path:
        return self.root / "crops"

    @property
    def provenance(self) -> Path:
        return self.root / "faces.provenance.json"

    @property
    def embeddings(self) -> Path:
        """`python -m bench embed`: <recognizer>.parquet per recognizer."""
        return self.root / "embeddings"

    def targets(self, pool: str, metric: str, query: str) -> Path:
        """The query stage's table: one target per source face."""
        return self.root / "targets" / pool / f"{metric}-{query}.parquet"

    def cells(self, pool: str) -> Path:
        return self.root / "cells" / pool


def sidecar(path: Path, suffix: str) -> Path:
    """<metric>-<query>.parquet -> <metric>-<query><suffix> (the query stage's side files)."""
    return path.with_name(path.name[: -len(".parquet")] + suffix)


def target_files(path: Path) -> list[Path]:
    """The query stage's three files for one targets table."""
    return [path, sidecar(path, ".failures.csv"), sidecar(path, ".provenance.json")]


# ---- a pool's files ------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolOutputs:
    """Where the pool stages write: <results_dir>/pools/<pool.name>/."""

    root: Path

    @property
    def faces(self) -> Path:
        """The pool's faces in the faces.parquet schema (photo relative to the pool's path)."""
        return self.root / "faces.parquet"

    @property
    def images(self) -> Path:
        """One row per pool image: the data manifest (photo, sha256, size, status)."""
        return self.root / "images.csv"

    @property
    def failures(self) -> Path:
        return self.root / "failures.csv"

    @property
    def crops(self) -> Path:
        return self.root / "crops"

    @property
    def manifold(self) -> Path:
        """One row per pool face: feature statuses, estimated age and gender."""
        return self.root / "manifold.parquet"

    @property
    def arrays(self) -> Path:
        """The feature arrays, row-aligned with manifold.parquet (bench.spaces.features)."""
        return self.root / "manifold.npz"

    @property
    def provenance(self) -> Path:
        return self.root / "manifold.provenance.json"

    @property
    def generation(self) -> Path:
        """Written by `python -m bench pool` for generated pools."""
        return self.root / "pool.provenance.json"

    @property
    def generated_images(self) -> Path:
        """Where a generated pool (conf/pool/dcgan.yaml's path) puts its images."""
        return self.root / "images"

    def manifold_files(self) -> list[Path]:
        return [self.faces, self.images, self.failures, self.crops, self.manifold, self.arrays, self.provenance]


def pool_dir(results_dir: Path | str, pool: str) -> PoolOutputs:
    return PoolOutputs(Path(results_dir) / "pools" / pool)


def pool_outputs(cfg: DictConfig) -> PoolOutputs:
    return pool_dir(cfg.results_dir, str(cfg.pool.name))


# ---- one cell --------------------------------------------------------------------------------

# conf/config.yaml's default `guard` (conf/guard/): its cells are named <metric>-<query>; a
# cell of another guard choice <metric>-<query>-<guard> (e.g. -open, the paper's open loop).
DEFAULT_GUARD = "closed"


def guard_of(cfg: DictConfig) -> str:
    """The cell's guard tag: "" for the default guard, else the conf/guard/ choice."""
    choice = str(cfg.choices.get("guard") or DEFAULT_GUARD)
    return "" if choice == DEFAULT_GUARD else choice


@dataclass(frozen=True)
class Cell:
    """One (dataset, pool, metric, query, generator[, guard]) choice; every stage that reads or
    writes a cell's files asks this class, so a path is written once. `guard` is "" for the
    default guard (bench.guard), else its conf/guard/ name."""

    results_dir: Path
    dataset: str
    pool: str
    metric: str
    query: str
    generator: str
    guard: str = ""

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "Cell":
        return cls(Path(cfg.results_dir), str(cfg.dataset.name), str(cfg.pool.name),
                   cfg.choices.metric, cfg.choices.query, cfg.choices.generator, guard_of(cfg))

    @property
    def name(self) -> str:
        """The cell folder's name: <metric>-<query>, with -<guard> for a non-default guard."""
        return f"{self.metric}-{self.query}" + (f"-{self.guard}" if self.guard else "")

    @property
    def dataset_dir(self) -> Path:
        return self.results_dir / self.dataset

    @property
    def targets(self) -> Path:
        """Written by the query stage: one target per source face."""
        return DatasetLayout(self.results_dir, self.dataset).targets(self.pool, self.metric, self.query)

    @property
    def root(self) -> Path:
        """The anonymize stage's folder for this cell."""
        return DatasetLayout(self.results_dir, self.dataset).cells(self.pool) / self.generator / self.name

    # anonymize
    @property
    def pairs(self) -> Path:
        return self.root / "pairs.parquet"

    @property
    def faces(self) -> Path:
        """The anonymized photos' faces, re-detected (faces.parquet schema)."""
        return self.root / "faces.parquet"

    @property
    def failures(self) -> Path:
        return self.root / "failures.csv"

    @property
    def photos(self) -> Path:
        return self.root / "photos"

    @property
    def crops(self) -> Path:
        return self.root / "crops"

    @property
    def records(self) -> Path:
        """One JSON per swapped face (the generator's record)."""
        return self.root / "records"

    @property
    def photo_table(self) -> Path:
        """One row per photo of the dataset: its anonymized photo and how its faces were
        covered (swapped, fallback, audit), or why it has none / what was left real."""
        return self.root / "photos.csv"

    @property
    def provenance(self) -> Path:
        return self.root / "provenance.json"

    # evaluate
    @property
    def outcomes(self) -> Path:
        """Written by the evaluate stage: one row per (pair, recognizer, metric, comparison)."""
        return self.root / "outcomes.parquet"

    @property
    def embeddings(self) -> Path:
        """The evaluate stage's embeddings of this cell's faces: sources/, targets/, results/
        (<recognizer>.parquet each). Per cell, so cells never write each other's files."""
        return self.root / "embeddings"

    @property
    def evaluate_provenance(self) -> Path:
        return self.root / "evaluate.provenance.json"

    # leaks
    @property
    def leaks(self) -> Path:
        """Written by the leaks stage: one row per face found in the anonymized photos x check."""
        return self.root / "leaks.parquet"

    @property
    def metrics(self) -> Path:
        """The cell's metrics (DVC metrics file); the leaks stage writes its "leaks" entry."""
        return self.root / "metrics.json"

    @property
    def leak_sheet(self) -> Path:
        """The leak check's contact sheet: red box = a face still real, green = anonymized."""
        return self.root / "leaks.png"

    @property
    def leaks_provenance(self) -> Path:
        return self.root / "leaks.provenance.json"

    @property
    def leaks_chance_csv(self) -> Path:
        """The leak table: owner-verified rate vs chance per recognizer x size band x treatment."""
        return self.root / "leaks_chance.csv"

    @property
    def leaks_chance_md(self) -> Path:
        return self.root / "leaks_chance.md"

    def anonymize_files(self) -> list[Path]:
        return [self.pairs, self.photo_table, self.faces, self.failures, self.photos, self.crops,
                self.records, self.provenance]

    def evaluate_files(self) -> list[Path]:
        return [self.outcomes, self.embeddings, self.evaluate_provenance]

    def leaks_files(self) -> list[Path]:
        return [self.leaks, self.leaks_chance_csv, self.leaks_chance_md, self.leak_sheet, self.leaks_provenance,
                self.metrics]


# ---- tables and figures ------------------------------------------------------------------------

def tables_dir(results_dir: Path | str, dataset: str, pool: str) -> Path:
    return Path(results_dir) / "tables" / dataset / pool


def verification_dir(results_dir: Path | str, dataset: str, pool: str) -> Path:
    """Tables 1-3: one folder per generator inside, plus outcomes.parquet and provenance."""
    return tables_dir(results_dir, dataset, pool) / "verification"


# The tables stage's guarded-vs-unguarded tables: <verification_dir>/<generator>/guard_<metric>-<query>.{csv,md}.
GUARD_TABLE_PREFIX = "guard_"


def verification_provenance(results_dir: Path | str, dataset: str, pool: str) -> Path:
    """The tables stage's provenance (its config: the table specs the readers need)."""
    return verification_dir(results_dir, dataset, pool) / "tables.provenance.json"


def verification_table(results_dir: Path | str, dataset: str, pool: str, generator: str, name: str, suffix: str) -> Path:
    """One of Tables 1-3 (`name` = tables.specs key) of one generator: suffix .csv, .md or .tex."""
    return verification_dir(results_dir, dataset, pool) / generator / f"{name}{suffix}"


def quality_files(results_dir: Path | str, dataset: str, pool: str, metric: str, query: str) -> dict[str, Path]:
    """Fig. 4's table (csv, md), its per-pair folder and provenance."""
    stem = tables_dir(results_dir, dataset, pool) / f"quality_{metric}-{query}"
    return {"csv": stem.with_name(stem.name + ".csv"), "md": stem.with_name(stem.name + ".md"),
            "pairs": stem, "provenance": stem.with_name(stem.name + ".provenance.json")}


def figures_dir(results_dir: Path | str, dataset: str, pool: str) -> Path:
    return Path(results_dir) / "figures" / dataset / pool


def benchmarks_dir(results_dir: Path | str) -> Path:
    """<results_dir>/benchmarks: the benchmarks' tables (detection recall, naive vs harness,
    the stage profile, query scaling, the suite's summary); no stage of dvc.yaml writes here,
    only perf/dvc.yaml's `perf` (perf_stage_outputs)."""
    return Path(results_dir) / "benchmarks"


def query_scaling_files(results_dir: Path | str) -> dict[str, Path]:
    """`python -m bench perf-query`'s report: every figure with its provenance (json) and the
    tables (md)."""
    out = benchmarks_dir(results_dir)
    return {"json": out / "query_scaling.json", "md": out / "query_scaling.md"}


def perf_files(results_dir: Path | str) -> dict[str, Path]:
    """`python -m bench perf`'s summary (the headline figures beside their targets)."""
    out = benchmarks_dir(results_dir)
    return {"json": out / "perf.json", "md": out / "perf.md"}


def projection_files(results_dir: Path | str) -> dict[str, Path]:
    """`python -m bench perf-projection`'s report (bench.benchmarks.projection): json and md."""
    out = benchmarks_dir(results_dir)
    return {"json": out / "projection.json", "md": out / "projection.md"}


def perf_stage_outputs(results_dir: Path | str) -> list[Path]:
    """What perf/dvc.yaml's stage `perf` declares: the summary and each part's report."""
    out = benchmarks_dir(results_dir)
    return [*perf_files(results_dir).values(), out / "profile.json", out / "profile.md", out / "profile",
            out / "naive_vs_harness.json", out / "naive_vs_harness.md", *query_scaling_files(results_dir).values(),
            *projection_files(results_dir).values()]


def metrics_json(results_dir: Path | str) -> Path:
    """The metrics stage's file: every table's numbers, read by `bench check` and `dvc metrics`."""
    return Path(results_dir) / "metrics.json"


# The paper's tables that the paper stage charts beside ours (conf/paper/<name>.yaml).
PAPER_CHARTS = ("table1", "table2", "table3")


def headline_json(results_dir: Path | str) -> Path:
    """The paper stage's headline numbers (a few dozen, for `dvc metrics show/diff`): the
    percentage claims ours vs the paper's, Tables 1-3 averages, faces left real, leaking faces."""
    return Path(results_dir) / "headline.json"


def paper_chart(results_dir: Path | str, table: str) -> Path:
    """The paper stage's chart of one table: paper vs ours per recognizer."""
    return Path(results_dir) / "figures" / f"paper_vs_ours_{table}.png"


def paper_files(results_dir: Path | str) -> dict[str, Path]:
    """Everything the paper stage writes: every quantitative claim of the paper beside ours
    (csv, md, provenance), the headline numbers (headline) and a chart per table (chart_<table>)."""
    tables = Path(results_dir) / "tables"
    return {"csv": tables / "paper_vs_ours.csv", "md": tables / "paper_vs_ours.md",
            "provenance": tables / "paper_vs_ours.provenance.json", "headline": headline_json(results_dir),
            **{f"chart_{name}": paper_chart(results_dir, name) for name in PAPER_CHARTS}}


# ---- the genuine baseline ------------------------------------------------------------------

# conf/config.yaml `identities.name`: the results folder of the identities set's faces and
# embeddings, which dvc.yaml's baseline stage declares (tests/test_baseline.py checks they agree).
IDENTITIES = "identities"


@dataclass(frozen=True)
class BaselineOutputs:
    """The baseline stage's files: its table, ROC and, under <results_dir>/<identities>/, the
    faces and embed stages' files of the identities set."""

    results_dir: Path
    identities: str = IDENTITIES

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "BaselineOutputs":
        return cls(Path(cfg.results_dir), str(cfg.identities.name))

    @property
    def dataset(self) -> DatasetLayout:
        """The identities set's faces and embeddings (written by the faces and embed stages)."""
        return DatasetLayout(self.results_dir, self.identities)

    @property
    def tables(self) -> Path:
        return self.results_dir / "tables"

    @property
    def figures(self) -> Path:
        return self.results_dir / "figures"

    @property
    def csv(self) -> Path:
        """One row per recognizer x distance metric (read by the paper stage)."""
        return self.tables / "baseline.csv"

    @property
    def markdown(self) -> Path:
        return self.tables / "baseline.md"

    @property
    def provenance(self) -> Path:
        return self.tables / "baseline.provenance.json"

    @property
    def failures(self) -> Path:
        return self.tables / "baseline.failures.csv"

    @property
    def roc_csv(self) -> Path:
        """The ROC curves' points, long format (recognizer, metric, fpr, tpr): `dvc plots`."""
        return self.tables / "baseline_roc.csv"

    @property
    def roc(self) -> Path:
        """The ROC curves' figure."""
        return self.figures / "baseline_roc.png"

    def files(self) -> list[Path]:
        """Everything the stage writes (dvc.yaml's outs)."""
        return [self.dataset.root, self.csv, self.markdown, self.failures, self.roc_csv, self.roc, self.provenance]


def shrink_files(results_dir: Path | str) -> dict[str, Path]:
    """The shrink stage's files: the identities set's verification at each face-size band
    (csv, read by the leaks stage; md; provenance)."""
    tables = Path(results_dir) / "tables"
    return {"csv": tables / "shrink.csv", "markdown": tables / "shrink.md", "provenance": tables / "shrink.provenance.json"}


# ---- the HTML report ------------------------------------------------------------------------

def report_dir(results_dir: Path | str) -> Path:
    """The report stage's one output: index.html and, under files/, the copies of the result
    files it shows (at their path under results_dir), so the folder is self-contained."""
    return Path(results_dir) / "report"


def find_cells(results_dir: Path | str, dataset: str, pool: str) -> list[Cell]:
    """Every cell folder of the dataset and pool that the anonymize stage wrote (it has a
    photos.csv), sorted by generator, then <metric>-<query>[-<guard>] (split at "-": metric and
    query names have none); a folder whose name does not split so is left out."""
    root = DatasetLayout(Path(results_dir), dataset).cells(pool)
    cells = [cell_of_folder(results_dir, dataset, pool, table.parent) for table in sorted(root.glob("*/*/photos.csv"))]
    return [cell for cell in cells if cell is not None]


def cell_of_folder(results_dir: Path | str, dataset: str, pool: str, folder: Path) -> "Cell | None":
    """The Cell whose root is `folder` (<...>/cells/<pool>/<generator>/<metric>-<query>[-<guard>]),
    or None when the folder's name does not split so."""
    metric, _, rest = Path(folder).name.partition("-")
    query, _, guard = rest.partition("-")
    cell = Cell(Path(results_dir), dataset, pool, metric, query, Path(folder).parent.name, guard)
    return cell if metric and query and cell.root == Path(folder) else None


# ---- the attacks -------------------------------------------------------------------------

# conf/dataset/labelled.yaml `name`: the identities set as a dataset, anonymized by the attack
# stage (its faces, targets and cells live in <results_dir>/labelled/; dvc.yaml's attack stage
# declares the folder; tests/test_attack.py checks the config agrees).
ATTACK_DATASET = "labelled"
# conf/config.yaml attack.subjects: which faces the attack stage attacks (bench.stages.attack).
ATTACK_SUBJECTS = ("identities", "dataset")


@dataclass(frozen=True)
class AttackOutputs:
    """The attack stage's files for one attacked dataset and cell (pool, generator, metric,
    query) under <results_dir>/attack/<dataset>/<pool>/<generator>/<metric>-<query>/, and the
    dataset folder whose cells it attacks (<results_dir>/<dataset>/: the faces, query,
    anonymize and evaluate stages' files). The dataset is the identities set (ATTACK_DATASET,
    `attack.subjects=identities`) or the cell's own (`attack.subjects=dataset`, e.g. devset)."""

    results_dir: Path
    pool: str
    generator: str
    metric: str
    query: str
    dataset: str = ATTACK_DATASET
    guard: str = ""  # as Cell.guard: "" for the default guard, else its conf/guard/ name

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "AttackOutputs":
        subjects = str(cfg.attack.subjects)
        if subjects not in ATTACK_SUBJECTS:
            raise BenchError(f"attack.subjects={subjects!r}: one of {', '.join(ATTACK_SUBJECTS)}")
        dataset = ATTACK_DATASET if subjects == "identities" else str(cfg.dataset.name)
        return cls(Path(cfg.results_dir), str(cfg.pool.name), cfg.choices.generator, cfg.choices.metric,
                   cfg.choices.query, dataset, guard_of(cfg))

    @property
    def root(self) -> Path:
        return (self.results_dir / "attack" / self.dataset / self.pool / self.generator
                / (f"{self.metric}-{self.query}" + (f"-{self.guard}" if self.guard else "")))

    @property
    def data(self) -> DatasetLayout:
        """The attacked dataset's files (faces, targets, cells of every strategy attacked)."""
        return DatasetLayout(self.results_dir, self.dataset)

    def cell(self, query: str) -> Cell:
        """The attacked dataset's cell of this generator and metric with query strategy `query`."""
        return Cell(self.results_dir, self.dataset, self.pool, self.metric, query, self.generator, self.guard)

    def table(self, name: str, suffix: str) -> Path:
        """<root>/<name><suffix>; name one of TABLES, suffix .csv or .md."""
        return self.root / f"{name}{suffix}"

    # name -> what it holds; each is written as <name>.csv and <name>.md
    TABLES = {
        "identification": "1. gallery identification: rank-k of real and anonymized probes vs the real gallery",
        "linkability": "2. linkability of one person's fakes across photos, per query strategy",
        "parrot": "3. the parrot attacker (anonymized gallery) beside the naive one (real gallery)",
        "distances": "4. threshold-free view: Source-vs-Result, genuine and impostor distance summaries",
        "kanonymity": "5. Supp. D: distance of the mean of k fakes to the source, k = 1..K",
    }

    def embeddings(self, query: str) -> Path:
        """The fakes of the labelled faces in strategy `query`'s cell, embedded at the source
        face's landmarks: <recognizer>.parquet each (bench.embeddings format)."""
        return self.root / "embeddings" / query

    @property
    def distances_long(self) -> Path:
        """Every distance behind distances.csv: recognizer, metric, kind, face_a, face_b, distance."""
        return self.root / "distances_all.csv"

    def distances_figure(self, recognizer: str) -> Path:
        """One histogram figure per recognizer: genuine, impostor, Source-vs-Result."""
        return self.root / f"distances_{recognizer}.png"

    @property
    def kanonymity_figure(self) -> Path:
        return self.root / "kanonymity.png"

    @property
    def parrot_fakes(self) -> Path:
        """attack.subjects=dataset: the parrot attacker's own fake of each face (its seed), crops
        and fakes.parquet, like kanonymity_fakes."""
        return self.root / "parrot_fakes"

    @property
    def kanonymity_fakes(self) -> Path:
        """The k fakes of each face (crops around the face, PNG) and fakes.parquet listing them."""
        return self.root / "kanonymity_fakes"

    @property
    def split(self) -> Path:
        """path, identity, role (gallery, probe, unused), face_id: who is in the gallery."""
        return self.root / "split.csv"

    @property
    def failures(self) -> Path:
        return self.root / "failures.csv"

    @property
    def provenance(self) -> Path:
        return self.root / "provenance.json"

    def files(self) -> list[Path]:
        """What the attack stage writes: the attack folder, and the labelled dataset's folder
        when it attacks the identities set (the cell's own dataset folder belongs to the
        faces, query, anonymize and evaluate stages)."""
        return [self.root, self.data.root] if self.dataset == ATTACK_DATASET else [self.root]
