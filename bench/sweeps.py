"""One job per set of output files in a sweep: `python -m bench CMD -m ...` refuses a job that
would overwrite the files another job of the same sweep writes.

Result paths name the dataset, pool, generator, query space and strategy (bench.layout), not
the detector, the seed or a threshold. So a sweep over `detector=mtcnn,scrfd` or `seed=0,1`
into one results_dir used to write every job to the same folder: the last job won and the
others' results were lost without a word. Now each job of a multirun claims its output slot
(`bench.layout.output_slot`) in the sweep's claims folder before it runs; a job whose slot
another job of the sweep holds fails with an error that names both jobs' overrides, and the
other jobs run. Works with any launcher whose jobs see the sweep folder (the basic launcher,
joblib, submitit), as the results themselves must.

The claims folder, <sweep dir>/claims, is emptied when the sweep starts by the Hydra callback
`SweepClaims` (conf/hydra/bench.yaml `hydra.callbacks`), which names it to the jobs in the
environment (CLAIMS_ENV): jobs launched in other processes inherit it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from bench.errors import BenchError
from bench.layout import output_slot

CLAIMS_ENV = "BENCH_SWEEP_CLAIMS"


class SweepClaims(Callback):
    """Hydra callback: an empty claims folder for each multirun, named in CLAIMS_ENV while it runs."""

    def __init__(self) -> None:
        self._before: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(str(config.hydra.sweep.dir)).expanduser().resolve() / "claims"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        self._before = os.environ.get(CLAIMS_ENV)
        os.environ[CLAIMS_ENV] = str(folder)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._before is None:
            os.environ.pop(CLAIMS_ENV, None)
        else:
            os.environ[CLAIMS_ENV] = self._before


def claim_outputs(cfg: DictConfig, command: str, job: int, overrides: list[str],
                  folder: str | os.PathLike | None = None) -> None:
    """Claims the output slot of job number `job` (its `overrides`) of the running sweep for
    `command`; nothing outside a sweep (`folder` None and CLAIMS_ENV unset).

    Raises:
        BenchError: another job of this sweep holds the slot: both would write the same files.
    """
    folder = folder or os.environ.get(CLAIMS_ENV)
    if not folder:
        return
    slot = output_slot(cfg)
    key = hashlib.sha256(json.dumps({"command": command, **slot}, sort_keys=True, default=str).encode()).hexdigest()
    claim = Path(folder) / f"{command}-{key[:20]}.json"
    mine = {"job": int(job), "overrides": [str(o) for o in overrides], "slot": slot}
    Path(folder).mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as tmp:
        json.dump(mine, tmp, default=str)
    try:
        os.link(tmp.name, claim)  # atomic, and fails if the claim exists: first job wins
        return
    except FileExistsError:
        holder = json.loads(claim.read_text())
    finally:
        os.unlink(tmp.name)
    if holder["job"] == mine["job"]:  # the same job again (a requeued cluster job)
        return
    differ = sorted({o.split("=", 1)[0].lstrip("+~") for o in set(mine["overrides"]) ^ set(holder["overrides"])})
    raise BenchError(
        f"jobs #{holder['job']} ({' '.join(holder['overrides'])}) and #{mine['job']} ({' '.join(mine['overrides'])}) "
        f"of this sweep would write the same files under {slot['results_dir']}: output paths name the dataset, "
        f"pool, generator, metric and query, not {', '.join(differ) or 'these overrides'}, so this job would "
        f"overwrite the other's results; it did not run. Give each job its own results_dir (one sweep per value "
        f"with results_dir=results/<value>, or interpolate a plain key, e.g. results_dir='results/seed${{seed}}')")
