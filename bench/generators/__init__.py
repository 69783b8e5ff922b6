"""Identity generators (face swappers) and the classic obfuscations, one file each."""


def build_generator(name: str, cfg):
    """The Generator `name` (conf/generator/<name>.yaml) configured for this run, its
    interpolations resolved against `cfg` (bench.registry.component_config: no second Hydra
    composition); loads no weights (see prepare()).

    Raises:
        UnknownComponent: no conf/generator/<name>.yaml.
    """
    from omegaconf import OmegaConf

    from bench.registry import GENERATORS, component_config

    return GENERATORS.build(OmegaConf.create(component_config("generator", str(name), cfg)), name=str(name))
