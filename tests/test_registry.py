"""Every config in conf/<group>/ builds a component of the group's base class without
loading weights; unknown names fail loudly; missing weights raise WeightsNotFound."""
from __future__ import annotations

import pytest

from bench.errors import UnknownComponent, WeightsNotFound
from bench.registry import DETECTORS, REGISTRIES


def all_components():
    return [(reg, name) for reg in REGISTRIES.values() for name in reg.names()]


@pytest.mark.parametrize("registry,name", all_components(), ids=lambda v: getattr(v, "group", v))
def test_every_config_builds_its_base_class(registry, name):
    component = registry.build(name)
    assert isinstance(component, registry.base)
    assert component.name == name


def test_detectors_are_registered():
    assert {"dlib_hog", "scrfd", "scrfd_500m", "yunet"} <= set(DETECTORS.names())


def test_unknown_name_fails_loudly():
    with pytest.raises(UnknownComponent, match="known: .*dlib_hog"):
        DETECTORS.build("no_such_detector")


@pytest.mark.parametrize("name", ["scrfd", "yunet"])
def test_missing_weights_raise_named_error(tmp_path, monkeypatch, name):
    monkeypatch.setenv("BENCH_SHARED", str(tmp_path / "absent"))
    monkeypatch.setenv("HOME", str(tmp_path))
    detector = DETECTORS.build(name)
    with pytest.raises(WeightsNotFound, match=r"weights not found at \$BENCH_SHARED/weights/") as error:
        detector.prepare()
    assert any("absent" in c for c in error.value.candidates)


def test_component_config_resolves_against_the_run_and_leaves_it_as_it_was(cfg_factory):
    """A component's ${paths.*} take the run's overrides; the run's config is borrowed for the
    call (no deep copy) and given back unchanged, flags included."""
    from omegaconf import OmegaConf, open_dict

    from bench.registry import COMPONENT_KEY, component_config

    cfg = cfg_factory("paths.weights=/elsewhere/weights")
    before = OmegaConf.to_yaml(cfg)
    node = component_config("detector", "scrfd", cfg)
    assert node["model_paths"][0] == "/elsewhere/weights/scrfd_2.5g_bnkps.onnx"
    assert OmegaConf.to_yaml(cfg) == before and COMPONENT_KEY not in cfg
    assert OmegaConf.is_struct(cfg)
    with open_dict(cfg):
        cfg[COMPONENT_KEY] = {"x": 1}
    with pytest.raises(RuntimeError, match="already holds"):
        component_config("detector", "scrfd", cfg)
    assert cfg[COMPONENT_KEY].x == 1  # not taken away
