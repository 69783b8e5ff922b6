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
    with pytest.raises(WeightsNotFound, match="weights not found at .*absent"):
        detector.prepare()
