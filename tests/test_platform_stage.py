"""The platform stage and the view command end to end on the hand-written example platform
(insightface's t1.jpg; dlib's HOG and recognizer from installed packages; blur fakes)."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from bench.access.layout import PlatformLayout
from bench.config import CONF_DIR

pytestmark = pytest.mark.slow
SMALL = [f"platform.file={CONF_DIR / 'platform' / 'example.yaml'}", "generator=blur", "platform.workload.views=40",
         "platform.thresholds.num=3", "platform.scale.users=[100,1000]", "platform.scale.networkx_max_users=100"]


def test_platform_stage_writes_the_table_and_figures(cfg_factory):
    from bench.stages import platform

    cfg = cfg_factory(*SMALL)
    layout = platform.run(cfg)
    table = pd.read_csv(layout.table_csv)
    assert table.access.tolist() == list(cfg.platform.access_models)
    assert (table.views == 40).all()
    assert table.set_index("access").loc[["proxy", "authorization"], "leaks"].eq(0).all()
    for path in (layout.table_md, layout.threshold_csv, layout.threshold_png, layout.fig1, layout.fig2,
                 layout.scale_csv, layout.scale_png, layout.provenance, layout.store("rules") / "server.sqlite"):
        assert path.is_file(), path


def test_view_writes_what_one_viewer_sees(cfg_factory):
    from bench.stages import view

    cfg = cfg_factory(*SMALL, "photo=t1.jpg", "viewer=carol", "access=rules")
    png = view.run(cfg)
    record = json.loads(png.with_suffix(".json").read_text())
    by_face = {f["face"]: f for f in record["faces"]}
    assert by_face["t1-5"]["shown"] == "fake"  # no account
    assert all(f["shown"] == "fake" or f["allowed (ground truth, after the workload)"] for f in record["faces"])
    assert png == PlatformLayout.from_config(cfg).view("rules", "t1.jpg", "carol", ".png")
