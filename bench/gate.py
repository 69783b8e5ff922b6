"""The regression gate: `python -m bench check` compares <results_dir>/metrics.json (the
metrics stage, bench.stages.metrics) with a committed baseline under per-metric rules, and
fails (exit status 2) with a table of every violation; `python -m bench check --update`
rewrites the baseline from the current metrics.json.

Reads:  <results_dir>/metrics.json (bench.layout.metrics_json), `gate.baseline` (the same
        schema, committed: conf/gate/baseline.json) and `gate.tolerances` (the rules:
        conf/gate/tolerances.yaml, which documents its format).
Writes: `gate.baseline`, with --update only.

Keys are compared flattened, as `dvc metrics show` names them ("verification.sample.dcgan.
faceswap.embedding.furthest.dlib.cosine.source_vs_result.verified_fraction"). Violations:
    missing      a key of the baseline is not in metrics.json
    now n/a      a key that had a value (a number, or "ok") now reads "n/a: <reason>"
    rose         `better: lower` rule: now > baseline + tolerance
    fell         `better: higher` rule: now < baseline - tolerance
    above        `at_most` rule: now > the ceiling, whatever the baseline (checked on every
                 key of metrics.json, also those the baseline does not have)
"""
from __future__ import annotations

import fnmatch
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml
from omegaconf import DictConfig

from bench import resultsio
from bench.errors import BenchError, GateFailed
from bench.layout import metrics_json
from bench.resultsio import flatten

log = logging.getLogger(__name__)

NA = "n/a"
EPS = 1e-9  # float noise allowance on top of every tolerance
RULE_FIELDS = {"match", "better", "tolerance", "at_most"}


@dataclass(frozen=True)
class GatePaths:
    """The gate's files: the baseline it compares with and its rules (`gate:` in conf/config.yaml;
    relative paths are taken from the working directory, like every path of the config)."""

    baseline: Path
    tolerances: Path

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "GatePaths":
        return cls(Path(cfg.gate.baseline), Path(cfg.gate.tolerances))


@dataclass(frozen=True)
class Rule:
    """One entry of the tolerances file: the keys it covers (fnmatch pattern; `*` spans dots)
    and either a direction with a tolerance or an absolute ceiling."""

    match: str
    better: str | None = None  # "lower" or "higher"
    tolerance: float | None = None  # in the metric's own units
    at_most: float | None = None

    def covers(self, key: str) -> bool:
        return fnmatch.fnmatchcase(key, self.match)

    def check(self, key: str, base, now) -> "Violation | None":
        """The violation of this rule by `now` (`base`: the baseline value, None when absent)."""
        if not is_number(now):
            return None
        if self.at_most is not None:
            if now > self.at_most + EPS:
                return Violation(key, base, now, self.at_most, "above: at most this, whatever the baseline")
            return None
        if not is_number(base):
            return None
        if self.better == "lower" and now > base + self.tolerance + EPS:
            return Violation(key, base, now, self.tolerance, "rose by more than the tolerance (lower is better)")
        if self.better == "higher" and now < base - self.tolerance - EPS:
            return Violation(key, base, now, self.tolerance, "fell by more than the tolerance (higher is better)")
        return None


@dataclass(frozen=True)
class Violation:
    """One row of the gate's table: the flattened metric key, its baseline value (None when
    the baseline lacks the key), its value now, the tolerance or ceiling, and the rule broken."""

    key: str
    baseline: object
    now: object
    tolerance: object
    rule: str


def run(cfg: DictConfig) -> int:
    """`python -m bench check`: returns the number of metrics compared when the gate passes.

    Raises:
        GateFailed: at least one violation; the message holds the table of all of them.
        BenchError: metrics.json, the baseline or the tolerances file is missing or malformed.
    """
    paths = GatePaths.from_config(cfg)
    current = read_metrics(metrics_json(cfg.results_dir), "run `python -m bench metrics` first")
    baseline = read_metrics(paths.baseline, "create it with `python -m bench check --update`")
    rules = load_rules(paths.tolerances)
    violations = compare(baseline, current, rules)
    if violations:
        raise GateFailed(
            f"{len(violations)} violation(s) of {paths.baseline} by {metrics_json(cfg.results_dir)}:\n"
            f"{violation_table(violations)}\n"
            "If the new numbers are intended, record them with `python -m bench check --update` "
            "(and commit the baseline).", violations)
    checked = sum(any(r.covers(k) for r in rules) for k in baseline)
    new = len(set(current) - set(baseline))
    log.info("gate passed: %d metrics compared with %s (%d under a tolerance rule)%s", len(baseline),
             paths.baseline, checked, f"; {new} new metric(s) not in the baseline" if new else "")
    return len(baseline)


def update(cfg: DictConfig) -> Path:
    """`python -m bench check --update`: the baseline becomes the current metrics.json; logs
    the path and the number of metrics. Returns the baseline's path."""
    paths = GatePaths.from_config(cfg)
    source = metrics_json(cfg.results_dir)
    metrics = read_json(source, "run `python -m bench metrics` first")
    resultsio.write_json(metrics, paths.baseline)
    log.info("gate baseline rewritten from %s: %s (%d metrics); commit it to make it the reference",
             source, paths.baseline, len(flatten(metrics)))
    return paths.baseline


def compare(baseline: dict[str, object], current: dict[str, object], rules: list[Rule]) -> list[Violation]:
    """Every violation of `baseline` by `current` (both flattened), sorted by key then rule."""
    out = []
    for key, base in baseline.items():
        if key not in current:
            out.append(Violation(key, base, "(missing)", "-", "missing: in the baseline, not in metrics.json"))
            continue
        now = current[key]
        if is_na(now) and not is_na(base):
            out.append(Violation(key, base, now, "-", "now n/a: had a value in the baseline"))
    for key, now in current.items():
        base = baseline.get(key)
        out += [v for r in rules if r.covers(key) and (v := r.check(key, base, now)) is not None]
    return sorted(out, key=lambda v: (v.key, v.rule))


def violation_table(violations: list[Violation], width: int = 60) -> str:
    """A fixed-width text table: metric key, baseline, now, tolerance, rule (long values cut)."""
    header = ("metric", "baseline", "now", "tolerance", "rule")
    rows = [header] + [(v.key, *(cut(show(x), width) for x in (v.baseline, v.now, v.tolerance)), v.rule)
                       for v in violations]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * len(header[-1]))
    return "\n".join(lines)


def load_rules(path: Path) -> list[Rule]:
    """The rules of the tolerances file (see conf/gate/tolerances.yaml for the format).

    Raises:
        BenchError: the file is missing, or a rule lacks `match`, has an unknown field, or is
            neither `better` (lower/higher) with `tolerance` nor `at_most`.
    """
    if not path.is_file():
        raise BenchError(f"gate tolerances {path} not found (conf/config.yaml gate.tolerances)")
    entries = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("rules")
    if not isinstance(entries, list):
        raise BenchError(f"{path}: needs a `rules:` list")
    rules = []
    for i, entry in enumerate(entries):
        where = f"{path}, rule {i + 1}"
        if not isinstance(entry, dict) or "match" not in entry:
            raise BenchError(f"{where}: each rule needs `match` (a key pattern)")
        unknown = set(entry) - RULE_FIELDS
        if unknown:
            raise BenchError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(RULE_FIELDS))})")
        relative = entry.get("better") in ("lower", "higher") and is_number(entry.get("tolerance"))
        ceiling = is_number(entry.get("at_most")) and not ({"better", "tolerance"} & set(entry))
        if relative == ceiling:
            raise BenchError(f"{where} ({entry['match']}): give either `better: lower|higher` with "
                             "`tolerance: <number>`, or `at_most: <number>`")
        rules.append(Rule(str(entry["match"]), entry.get("better"),
                          float(entry["tolerance"]) if relative else None,
                          float(entry["at_most"]) if ceiling else None))
    return rules


def read_metrics(path: Path, hint: str) -> dict[str, object]:
    """A metrics file, flattened."""
    return flatten(read_json(path, hint))


def read_json(path: Path, hint: str) -> dict:
    if not path.is_file():
        raise BenchError(f"{path} not found: {hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise BenchError(f"{path} is not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise BenchError(f"{path} is not a metrics file (a JSON object)")
    return data


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_na(value) -> bool:
    return isinstance(value, str) and value.startswith(NA)


def show(value) -> str:
    if isinstance(value, str):
        return value
    return f"{value:g}" if isinstance(value, float) else json.dumps(value)


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
