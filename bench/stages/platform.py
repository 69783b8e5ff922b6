"""Stage `platform`: the MFMC platform simulated under each access model (§3.3), measured.

Reads:  the dataset's photos (`dataset=`), or the identity-labelled set (`identities.path=`;
        platform.users decides, bench.access.sources), or a platform file (platform.file);
        platform.detector, platform.recognizer (weights), the generator and its fallback, the
        pool's manifold when the generator takes targets (results/pools/<pool>/).
Writes (bench.access.layout):
        tables/access_models.{csv,md}    one row per access model (platform.access_models):
            swaps per upload and per view, bytes of originals / published photos / fakes /
            embeddings on the server and on the devices, median and p95 ms per view, leaks
            and over-fakes against the ground truth (counts and rates)
        tables/access_models.provenance.json
        tables/access_threshold.csv, figures/access_threshold.png   recognizer-driven models
            (rules) over platform.thresholds: leak and over-fake rates (decisions only)
        figures/access_fig1.png, access_fig2.png      Figs. 1-2 from the photos
        tables/access_scale.{csv,md}, figures/access_scale.png      10^3..10^6 users on paper
        platform/store/<access>/server.sqlite, clients/*.sqlite     what is stored where
One seeded workload (uploads, tags, consents, untags, views: bench.access.generate) runs on
every model, so the rows compare like with like. The models and figures share one
bench.access.fakers.MemoFaker: a fake asked for again from the same pixels (same face and
key) is computed once per run, while each model's swap counts remain the fakes it asks for.
"""
from __future__ import annotations

import logging
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from bench import resultsio
from bench.access import figures, scale, sources
from bench.access.fakers import EmbeddingMatcher, MemoFaker, PaintFaker, PerfectMatcher
from bench.access.layout import PlatformLayout
from bench.access.session import build_access, matcher_for, photo_reader, workload
from bench.access.simulate import run_workload
from bench.access.storage import Storage
from bench.access.targets import build_faker
from bench.errors import BenchError
from bench.progress import progress
from bench.provenance import record
from bench.recognizers import build_recognizer

log = logging.getLogger(__name__)

COLUMNS = [
    "access", "section", "matcher", "threshold", "users", "photos", "uploads", "views", "face_views",
    "swaps_per_upload", "swaps_per_view", "swaps_on_untag",
    "leaks", "leak_rate", "over_fakes", "over_fake_rate",
    "server_original", "server_published", "server_fakes", "server_embeddings",
    "client_original", "client_published", "client_fakes", "client_embeddings", "client_max_embeddings",
    "clients", "note",
]
MD_COLUMNS = ["access", "section", "matcher", "swaps_per_upload", "swaps_per_view", "leak_rate", "over_fake_rate", "server_original", "server_published",
              "server_fakes", "server_embeddings", "client_embeddings"]


def run(cfg: DictConfig) -> PlatformLayout:
    """Simulates every configured access model on one seeded platform and workload."""
    layout = PlatformLayout.from_config(cfg)
    p = cfg.platform
    recognizer = build_recognizer(str(p.recognizer), cfg)
    try:
        threshold = float(recognizer.threshold(str(p.metric)))
        threshold_note = ""
    except (BenchError, KeyError) as err:
        threshold, threshold_note = None, f"n/a: {recognizer.name} has no {p.metric} threshold ({err})"
    built = sources.build(cfg, recognizer)
    platform = built.platform
    events = workload(cfg, built)
    faker, faker_note = build_faker(cfg)
    read_photo = photo_reader()

    faker = MemoFaker(faker)  # one memo for every model and figure: each distinct fake made once
    rows, models, timings = simulate_models(cfg, platform, events, faker, faker_note, recognizer, threshold,
                                            threshold_note, read_photo, layout)
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    resultsio.write_csv(table, layout.table_csv)
    resultsio.write_text(to_markdown(table, built, cfg), layout.table_md)

    curve = threshold_curve(cfg, platform, events, recognizer, read_photo)
    resultsio.write_csv(curve, layout.threshold_csv)
    figures.plot_threshold(curve, threshold, recognizer.name, str(p.metric), layout.threshold_png)
    figures.fig1(cfg, platform, faker, read_photo, layout.fig1)
    figures.fig2(cfg, platform, faker, recognizer, threshold, read_photo, layout.fig2)
    scale_table = scale.scale_table(OmegaConf.to_container(p.scale, resolve=True), int(p.seed))
    resultsio.write_csv(scale_table, layout.scale_csv)
    resultsio.write_text(scale.to_markdown(scale_table, OmegaConf.to_container(p.scale, resolve=True)), layout.scale_md)
    scale.plot(scale_table, layout.scale_png)
    resultsio.write_json(record(
        cfg, "platform", mode=built.mode, note=built.note, faker=faker_note,
        recognizer={"name": recognizer.name, "metric": str(p.metric), "threshold": threshold,
                    "weights": [str(w) for w in recognizer.weights()]},
        counts={"users": len(platform.users), "friendships": platform.graph.number_of_edges(),
                "photos": len(platform.photos), "faces": len(platform.faces),
                "faces_without_account": sum(f.owner is None for f in platform.faces.values()),
                "events": {k: sum(e.kind == k for e in events) for k in ("upload", "tag", "consent", "untag", "view")}},
        stores={m: str(layout.store(m)) for m in models},
        view_timings_ms=timings,  # wall time per view on this machine: not in the table (not reproducible)
        fakes=faker.stats(),  # computed once each (MemoFaker), reused by the other models and the figures
    ), layout.provenance)
    print(layout.table_md.read_text())
    return layout


def simulate_models(cfg, platform, events, faker, faker_note: str, recognizer, threshold: float | None,
                    threshold_note: str, read_photo, layout: PlatformLayout) -> tuple[list[dict], dict, dict]:
    """Runs the workload on each model of platform.access_models, every model through one
    MemoFaker (`faker` itself if it is one), so that a fake two models ask for from the same
    pixels is computed once; each model's swap counts are still the fakes it asks for.

    Returns:
        (one table row per model, {name: the opened model}, {name: view timings in ms}).
    """
    faker = faker if isinstance(faker, MemoFaker) else MemoFaker(faker)
    rows, models, timings = [], {}, {}
    for name in cfg.platform.access_models:
        model = build_access(str(name), cfg)
        matcher = matcher_for(model, recognizer, threshold)
        base = {"access": model.name, "section": model.section, "users": len(platform.users),
                "photos": len(platform.photos)}
        if matcher is None:
            rows.append({**base, "matcher": recognizer.name, "note": threshold_note})
            continue
        missing = sum(f.embedding.size == 0 for f in platform.faces.values()) if model.uses_recognizer else 0
        storage = Storage(layout.store(model.name))
        model.open(platform, storage, faker, matcher, read_photo)
        result = run_workload(model, platform, events, render=True)
        storage.close()
        models[model.name] = model
        notes = [faker_note]
        if missing:
            notes.append(f"{missing} face(s) without an embedding: unknown to the recognizer, faked")
        timings[model.name] = result.timings()
        rows.append({**base, **result.metrics(), "matcher": matcher.name,
                     "threshold": getattr(matcher, "threshold", float("nan")), "note": "; ".join(notes)})
        log.info("%s: %d views, leak rate %s, over-fake rate %s, swaps/upload %s, swaps/view %s, view %s ms (median)",
                 model.name, result.metrics()["views"], rows[-1].get("leak_rate"), rows[-1].get("over_fake_rate"),
                 rows[-1].get("swaps_per_upload"), rows[-1].get("swaps_per_view"), timings[model.name]["view_ms_median"])
    log.info("fakes: %d computed, %d reused across %d access models", faker.computed, faker.reused, len(models))
    return rows, models, timings


def threshold_curve(cfg, platform, events, recognizer, read_photo) -> pd.DataFrame:
    """Leak and over-fake rates of each recognizer-driven model over platform.thresholds
    (decisions only: a painted fake stands in for the generator), plus a perfect recognizer."""
    t = cfg.platform.thresholds
    grid = np.linspace(float(t.start), float(t.stop), int(t.num))
    rows = []
    for name in cfg.platform.access_models:
        probe = build_access(str(name), cfg)
        if not probe.uses_recognizer:
            continue
        matchers = [("perfect", PerfectMatcher()), *[(f"{x:.4f}", EmbeddingMatcher(float(x), recognizer.name)) for x in grid]]
        for label, matcher in progress(matchers, f"{probe.name}: threshold curve", unit="threshold"):
            model = build_access(str(name), cfg)
            model.open(platform, Storage(None), PaintFaker(), matcher, read_photo)
            m = run_workload(model, platform, events, render=False).metrics()
            rows.append({"access": model.name, "recognizer": matcher.name if label != "perfect" else "perfect",
                         "threshold": float("nan") if label == "perfect" else float(label),
                         "leak_rate": m["leak_rate"], "over_fake_rate": m["over_fake_rate"],
                         "leaks": m["leaks"], "over_fakes": m["over_fakes"], "face_views": m["face_views"]})
    return pd.DataFrame(rows, columns=["access", "recognizer", "threshold", "leak_rate", "over_fake_rate", "leaks",
                                       "over_fakes", "face_views"])


def to_markdown(table: pd.DataFrame, built, cfg) -> str:
    w = cfg.platform.workload
    head = (f"# Access models (MFMC §3.3): one seeded platform and workload\n\n"
            f"{built.note}. Workload: {len(built.platform.photos)} uploads, {w.views} views "
            f"(p_tag {w.p_tag}, p_consent {w.p_consent}, p_untag {w.p_untag}), seed {cfg.platform.seed}. "
            "Leak rate = real faces shown to viewers their owner does not allow / such face-views; "
            "over-fake rate = fakes shown to allowed viewers / such face-views. Bytes per SQLite table "
            "(server; all devices together).\n\n")
    md = table.reindex(columns=MD_COLUMNS).to_markdown(index=False)
    notes = "\n".join(f"- {r.access}: {r.note}" for r in table.itertuples() if isinstance(r.note, str) and r.note)
    return head + md + "\n\n" + notes + "\n"
