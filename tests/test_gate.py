"""The metrics stage (bench.stages.metrics), the regression gate (bench.gate) and the experiment
files (conf/experiment/): on a small synthetic results tree in tmp_path whose Tables 1-3 the
real tables stage writes; the gate runs with the committed conf/gate/tolerances.yaml."""
from __future__ import annotations

import copy
import json
import logging

import pandas as pd
import pytest

from bench import gate
from bench.cli import main
from bench.config import CONF_DIR, cell_configs, group_options, load_config
from bench.errors import BenchError, GateFailed
from bench.layout import Cell, DatasetLayout, metrics_json, quality_files
from bench.stages import metrics, tables

TOLERANCES = CONF_DIR / "gate" / "tolerances.yaml"
D, P, G = "sample", "dcgan", "faceswap"  # the default dataset, pool and generator names
CELLS = ["furthest", "random_furthest_ag"]  # embedding space; the tables' "random" column is not run
TOY = f"verification.{D}.{P}.{G}.embedding.furthest.toy.cosine.source_vs_result.verified_fraction"
GONE = f"verification.{D}.{P}.{G}.embedding.furthest.gone.cosine.source_vs_result.verified_fraction"
CELL = f"cells.{D}.{P}.{G}.embedding.furthest"
QUALITY = f"quality.{D}.{P}.{G}.embedding.random_furthest_ag"


def outcome_rows(query: str) -> list[dict]:
    """toy verifies 1 of 4 source/result pairs and none of the source/target pairs; gone has no weights."""
    rows = []
    for metric in ("cosine", "euclidean_l2"):
        for comparison, verified in (("source_vs_target", [0, 0, 0, 0]), ("source_vs_result", [1, 0, 0, 0])):
            for i, v in enumerate(verified):
                base = {"metric": metric, "comparison": comparison, "strategy": query, "space": "embedding",
                        "generator": G, "seed": 0, "source_face": f"a.jpg-00{i}", "other_face": f"t{i}"}
                rows.append({**base, "recognizer": "toy", "threshold": 0.1, "distance": 0.5 - 0.45 * v,
                             "verified": bool(v), "status": "ok"})
                rows.append({**base, "recognizer": "gone", "threshold": 0.1, "distance": float("nan"),
                             "verified": None, "status": "n/a: weights not found at /w/gone.onnx"})
    return rows


def write_tree(cfg) -> None:
    """Dataset inventory (4 faces in a.jpg, none in b.jpg), two evaluated and leak-checked cells,
    Tables 1-3 by the real tables stage, and a quality table."""
    results = DatasetLayout.from_config(cfg)
    results.root.mkdir(parents=True)
    pd.DataFrame({"photo": ["a.jpg", "b.jpg"], "sha256": ["x", "y"], "width": [64, 64], "height": [64, 64],
                  "source_mode": "RGB", "exif_rotated": False, "n_faces": [4, 0], "status": ["ok", "no_face"]}
                 ).to_csv(results.photos, index=False)
    for query in CELLS:
        cell = Cell(results.results_dir, D, P, "embedding", query, G)
        cell.root.mkdir(parents=True)
        pd.DataFrame({"photo": ["a.jpg", "b.jpg"], "result": ["photos/a.jpg.png", "photos/b.jpg.png"],
                      "faces": [4, 0], "swapped": [3, 0], "fallback": [1, 0], "audit_found": [1, 0],
                      "audit_covered": [1, 0], "left_real": [0, 0], "status": ["anonymized", "no face found"]}
                     ).to_csv(cell.photo_table, index=False)
        pd.DataFrame({"photo": ["a.jpg", "a.jpg"], "face_id": ["a.jpg-003", ""], "stage": ["anonymize", "audit"],
                      "reason": ["fallback blur: no target", "fallback blur: missed"]}).to_csv(cell.failures, index=False)
        cell.provenance.write_text(json.dumps({"counts": {"faces": 4, "swapped": 3, "fallback": 1, "left_real": 0}}))
        cell.metrics.write_text(json.dumps({"leaks": {"faces_found": 5, "unchanged_faces": 0, "leaking_faces": 1,
                                                      "missing_output": []}}))
        pd.DataFrame(outcome_rows(query)).to_parquet(cell.outcomes)
    tables.run(cfg)
    pd.DataFrame({
        "generator": [G, "blur"], "status": ["ok", "n/a: cell not run (pairs.parquet missing)"],
        "faces": [4, None], "swapped": [3, None], "redetection_rate": [0.75, None], "n": [3, None],
        "psnr": [22.5, None], "ssim": [0.83, None], "rmse": [0.074, None], "fid": [None, None],
    }).to_csv(quality_files(results.results_dir, D, P, "embedding", "random_furthest_ag")["csv"], index=False)


@pytest.fixture
def cfg(cfg_factory, tmp_path):
    made = cfg_factory("recognizers=[toy,gone]", f"gate.baseline={tmp_path / 'gate' / 'baseline.json'}",
                       f"gate.tolerances={TOLERANCES}")
    write_tree(made)
    return made


def flat(cfg) -> dict:
    return metrics.flatten(json.loads(metrics_json(cfg.results_dir).read_text()))


def write_metrics(cfg, flat_metrics: dict) -> None:
    """Writes a flattened metrics dict back in the nested form the stage writes."""
    nested: dict = {}
    for key, value in flat_metrics.items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    metrics_json(cfg.results_dir).write_text(json.dumps(nested))


# ---- the metrics stage -----------------------------------------------------------------------

def test_metrics_read_the_tables_quality_and_cells(cfg):
    metrics.run(cfg)
    m = flat(cfg)
    assert m[TOY] == 0.25 and m[TOY.replace(".verified_fraction", ".n")] == 4
    assert m[TOY.replace("source_vs_result", "source_vs_target")] == 0.0
    assert m[GONE] == "n/a: weights not found at /w/gone.onnx" and m[GONE.replace(".verified_fraction", ".n")] == 0
    average = f"verification.{D}.{P}.{G}.embedding.random_furthest_ag.average.euclidean_l2.source_vs_result"
    assert m[f"{average}.verified_fraction"] == 0.25 and m[f"{average}.n"] == 1  # one recognizer averaged
    assert not [k for k in m if ".random_furthest." in k]  # a cell that was not run: left out, not "n/a: no pairs"
    assert not [k for k in m if k.startswith("verification") and ".ssim." in k]
    assert {k: m[k] for k in m if k.startswith(CELL + ".")} == {
        f"{CELL}.{k}": v for k, v in {
            "inventory_faces": 4, "faces": 4, "swapped": 3, "fallback": 1, "audit_found": 1, "audit_covered": 1,
            "left_real": 0, "photos_left_real": 0, "unaccounted_faces": 0, "failures": 2, "status": "ok",
            "leaks.faces_found": 5, "leaks.unchanged_faces": 0, "leaks.leaking_faces": 1, "leaks.missing_output": 0,
        }.items()}
    assert m[f"{QUALITY}.psnr"] == 22.5 and m[f"{QUALITY}.n"] == 3
    assert m[f"{QUALITY}.fid"] == "n/a: not measured"
    assert not [k for k in m if ".blur." in k]  # its cell was not run


def test_metrics_are_byte_identical_for_the_same_inputs(cfg):
    path = metrics.run(cfg)
    first = path.read_bytes()
    assert metrics.run(cfg).read_bytes() == first
    assert first.decode().endswith("}\n") and json.loads(first)  # sorted keys, valid JSON (no NaN)
    assert list(json.loads(first)) == ["cells", "quality", "verification"]


def test_metrics_count_a_face_missing_from_the_cell_as_unaccounted(cfg):
    cell = Cell(DatasetLayout.from_config(cfg).results_dir, D, P, "embedding", "furthest", G)
    table = pd.read_csv(cell.photo_table)
    table.loc[0, ["faces", "swapped"]] = [3, 2]  # a.jpg's face 2 dropped
    table.to_csv(cell.photo_table, index=False)
    cell.provenance.unlink()  # else the stale provenance counts are reported first
    metrics.run(cfg)
    assert flat(cfg)[f"{CELL}.unaccounted_faces"] == 1


def test_metrics_refuse_a_cell_whose_files_disagree(cfg):
    cell = Cell(DatasetLayout.from_config(cfg).results_dir, D, P, "embedding", "furthest", G)
    cell.provenance.write_text(json.dumps({"counts": {"faces": 4, "swapped": 4, "fallback": 0}}))
    with pytest.raises(BenchError, match="disagree on fallback, swapped"):
        metrics.run(cfg)


# ---- the gate ---------------------------------------------------------------------------------

def test_real_metrics_pass_against_the_baseline_update_wrote(cfg, caplog):
    metrics.run(cfg)
    with caplog.at_level(logging.INFO, logger="bench.gate"):
        path = gate.update(cfg)
        assert path.read_bytes() == metrics_json(cfg.results_dir).read_bytes()
        assert gate.run(cfg) == len(flat(cfg))
    assert f"gate baseline rewritten from {metrics_json(cfg.results_dir)}: {path} ({len(flat(cfg))} metrics)" in caplog.text
    assert f"gate passed: {len(flat(cfg))} metrics compared" in caplog.text


def test_update_replaces_an_old_baseline(cfg):
    metrics.run(cfg)
    old = flat(cfg)
    old[TOY] = 0.0
    write_metrics(cfg, old)
    gate.update(cfg)
    metrics.run(cfg)
    with pytest.raises(GateFailed):  # 0.0 -> 0.25: beyond the 0.05 tolerance
        gate.run(cfg)
    gate.update(cfg)
    gate.run(cfg)
    assert json.loads(gate.GatePaths.from_config(cfg).baseline.read_text()) == json.loads(
        metrics_json(cfg.results_dir).read_text())


def raise_fraction(m):
    m[TOY] = 0.5


def turn_na(m):
    m[TOY] = "n/a: weights not found at /w/toy.onnx"


def leave_real(m):
    m[f"{CELL}.left_real"] = 1


def lose_face(m):
    m[f"{CELL}.unaccounted_faces"] = 1


def leak_more(m):
    m[f"{CELL}.leaks.leaking_faces"] += 1


def lower_psnr(m):
    m[f"{QUALITY}.psnr"] = 20.0


def raise_rmse(m):
    m[f"{QUALITY}.rmse"] = 0.2


def drop_ssim(m):
    del m[f"{QUALITY}.ssim"]


@pytest.mark.parametrize("perturb, key, rule", [
    (raise_fraction, TOY, "rose by more than the tolerance (lower is better)"),
    (turn_na, TOY, "now n/a: had a value in the baseline"),
    (leave_real, f"{CELL}.left_real", "above: at most this, whatever the baseline"),
    (lose_face, f"{CELL}.unaccounted_faces", "above: at most this, whatever the baseline"),
    (leak_more, f"{CELL}.leaks.leaking_faces", "rose by more than the tolerance (lower is better)"),
    (lower_psnr, f"{QUALITY}.psnr", "fell by more than the tolerance (higher is better)"),
    (raise_rmse, f"{QUALITY}.rmse", "rose by more than the tolerance (lower is better)"),
    (drop_ssim, f"{QUALITY}.ssim", "missing: in the baseline, not in metrics.json"),
])
def test_a_perturbed_metric_fails_the_gate_naming_its_key(cfg, perturb, key, rule):
    metrics.run(cfg)
    gate.update(cfg)
    m = flat(cfg)
    perturb(m)
    write_metrics(cfg, m)
    with pytest.raises(GateFailed) as failed:
        gate.run(cfg)
    assert [(v.key, v.rule) for v in failed.value.violations] == [(key, rule)]
    assert key in str(failed.value) and rule in str(failed.value)


def test_every_violation_is_in_the_table_and_the_command_exits_non_zero(cfg, tmp_path, caplog):
    overrides = [f"results_dir={cfg.results_dir}", "recognizers=[toy,gone]", f"gate.baseline={cfg.gate.baseline}",
                 f"gate.tolerances={TOLERANCES}"]
    assert main(["metrics", *overrides]) == 0
    assert main(["check", "--update", *overrides]) == 0
    assert main(["check", *overrides]) == 0
    m = flat(cfg)
    for perturb in (raise_fraction, leave_real, lower_psnr, drop_ssim):
        perturb(m)
    write_metrics(cfg, m)
    caplog.clear()
    assert main(["check", *overrides]) == 2
    table = caplog.text[caplog.text.index("4 violation(s)"):]
    header = next(line for line in table.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", "baseline", "now", "tolerance", "rule"]
    for key in (TOY, f"{CELL}.left_real", f"{QUALITY}.psnr", f"{QUALITY}.ssim"):
        assert key in table


def test_the_ceiling_rules_also_hold_for_keys_the_baseline_lacks(cfg):
    metrics.run(cfg)
    gate.update(cfg)
    m = flat(cfg)
    new_cell = CELL.replace(".furthest", ".closest")
    m[f"{new_cell}.left_real"] = 2
    write_metrics(cfg, m)
    with pytest.raises(GateFailed) as failed:
        gate.run(cfg)
    assert [v.key for v in failed.value.violations] == [f"{new_cell}.left_real"]


def test_a_tolerance_absorbs_a_small_change(cfg):
    metrics.run(cfg)
    gate.update(cfg)
    m = flat(cfg)
    m[TOY] += 0.05  # exactly the tolerance
    m[f"{QUALITY}.psnr"] -= 0.4
    write_metrics(cfg, m)
    gate.run(cfg)


def test_missing_inputs_say_what_to_run(cfg):
    with pytest.raises(BenchError, match="python -m bench metrics"):
        gate.run(cfg)
    metrics.run(cfg)
    with pytest.raises(BenchError, match="python -m bench check --update"):
        gate.run(cfg)


@pytest.mark.parametrize("rule, message", [
    ({"better": "lower", "tolerance": 0.1}, "needs `match`"),
    ({"match": "x.*", "better": "sideways", "tolerance": 0.1}, "either"),
    ({"match": "x.*", "at_most": 0, "better": "lower"}, "either"),
    ({"match": "x.*", "at_most": 0, "typo": 1}, "unknown field"),
])
def test_a_malformed_rule_is_refused(tmp_path, rule, message):
    path = tmp_path / "tolerances.yaml"
    path.write_text(json.dumps({"rules": [rule]}))
    with pytest.raises(BenchError, match=message):
        gate.load_rules(path)


def test_every_committed_rule_covers_a_committed_baseline_key():
    baseline = CONF_DIR / "gate" / "baseline.json"
    if not baseline.is_file():
        pytest.skip(f"{baseline} not generated yet (python -m bench check --update)")
    keys = metrics.flatten(json.loads(baseline.read_text()))
    for rule in gate.load_rules(TOLERANCES):
        assert any(rule.covers(k) for k in keys), f"{rule.match} covers no key of {baseline}"


# ---- experiments ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", group_options("experiment"))
def test_every_experiment_composes_into_existing_cells(name):
    cfg = load_config([f"+experiment={name}"])
    assert cfg.choices.experiment == name
    cells = cell_configs(cfg)
    assert len(cells) == len(cfg.pipeline.cells) >= 1
    for one in cells:
        cell = Cell.from_config(one)
        for group in ("metric", "query", "generator"):
            assert getattr(cell, group) in group_options(group)
            assert one[group]._target_  # the node of that option, not the command's
    text = (CONF_DIR / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_") and "params.yaml keys" in text


def test_experiment_cells_carry_their_own_components():
    cells = {Cell.from_config(c).generator: c for c in cell_configs(load_config(["+experiment=fig4"]))}
    assert sorted(cells) == ["blur", "faceswap", "faceswap2d", "pixelate"]
    assert cells["blur"].generator._target_ == "bench.generators.blur.GaussianBlur"
    assert {Cell.from_config(c).query for c in cells.values()} == {"random_furthest_ag"}


def test_no_cells_list_is_the_one_cell_of_the_command():
    cfg = load_config(["generator=blur"])
    assert cell_configs(cfg) == [cfg]
    bad = copy.deepcopy(cfg)
    bad.pipeline.cells = [{"metric": "embedding", "space": "x"}]
    with pytest.raises(BenchError, match="unknown key"):
        cell_configs(bad)
    bad.pipeline.cells = [{"metric": "nonesuch"}]
    with pytest.raises(BenchError, match="no metric 'nonesuch'"):
        cell_configs(bad)
