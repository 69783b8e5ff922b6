"""The HTML report (stage `report`) on a small results tree written in tmp_path: Tables 1-3 by
the tables stage's own writer from fabricated outcomes, the other files in the shapes their
stages write. Every link stays inside the report folder and resolves; headless Chromium
(Debian's `chromium`) loads every image and renders every table."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pytest

from bench import resultsio
from bench.access.layout import PlatformLayout
from bench.layout import AttackOutputs, BaselineOutputs, Cell, DatasetLayout, figures_dir, paper_files, pool_dir, quality_files, report_dir
from bench.stages import report, tables

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")  # Debian's package
FACES = ["p.jpg-000", "p.jpg-001", "p.jpg-002"]
TARGETS = ["dcgan_00001.png-000", "dcgan_00002.png-000", ""]  # the third face: no target, the fallback's


def png(path: Path, color, size=(112, 112)) -> None:
    resultsio.write_png(np.full((*size, 3), color, np.uint8), path)


def face_table(root: Path, ids: list[str], photo: str) -> None:
    """A faces.parquet (the columns the report reads) and one crop per face."""
    for i, face in enumerate(ids):
        png(root / "crops" / f"{face}.png", (40 * i, 120, 200))
    resultsio.write_parquet(pd.DataFrame({"photo": photo, "face_id": ids, "crop": [f"crops/{f}.png" for f in ids]}),
                            root / "faces.parquet")


def outcome_rows(recognizer: str, metric: str, comparison: str, verified, status=None) -> pd.DataFrame:
    """The evaluate stage's outcomes of FACES; a pair without a verdict (None) says why (`status`)."""
    others = TARGETS if comparison == "source_vs_target" else FACES
    return pd.DataFrame({
        "recognizer": recognizer, "metric": metric, "comparison": comparison, "strategy": "random_furthest_ag",
        "space": "embedding", "generator": "faceswap", "seed": 0, "source_face": FACES, "other_face": others,
        "threshold": 0.07, "distance": [0.03 if v else (np.nan if v is None else 0.5) for v in verified],
        "verified": pd.array(verified, dtype="boolean"),
        "status": [status or ("ok" if v is not None else "n/a: no target") for v in verified]})


def fabricate(cfg) -> Path:
    """The result files of one run of dataset `sample` x pool `dcgan`; returns results_dir."""
    results = Path(cfg.results_dir)
    data = DatasetLayout(results, "sample")
    face_table(data.root, FACES, "p.jpg")
    resultsio.write_failures([{"photo": "q.jpg", "face_id": "", "stage": "read", "reason": "not an image"}], data.failures)
    pool = pool_dir(results, "dcgan")
    face_table(pool.root, TARGETS[:2], "dcgan")
    resultsio.write_failures([], pool.failures)

    cell = Cell(results, "sample", "dcgan", "embedding", "random_furthest_ag", "faceswap")
    resultsio.write_parquet(pd.DataFrame({
        "source_face": FACES, "photo": "p.jpg", "target": TARGETS, "result_face": ["p.jpg-000", "p.jpg-001", ""],
        "strategy": "random_furthest_ag", "space": "embedding", "pool": "dcgan", "generator": "faceswap", "seed": 0,
        "distance": [0.2, 0.3, np.nan], "status": ["swapped", "swapped", "fallback: blur (no target)"]}), cell.pairs)
    face_table(cell.root, ["p.jpg-000", "p.jpg-001"], "photos/p.jpg.png")
    resultsio.write_csv(pd.DataFrame([{"photo": "p.jpg", "result": "photos/p.jpg.png", "faces": 3, "swapped": 2,
                                       "fallback": 0, "audit_found": 0, "audit_covered": 0, "left_real": 1,
                                       "status": "left real"}]), cell.photo_table)
    resultsio.write_failures([{"photo": "p.jpg", "face_id": "p.jpg-002", "stage": "anonymize",
                               "reason": "NOT ANONYMIZED: the fallback refused"}], cell.failures)
    weights = "n/a: weights not found at /w/deepid.pth"
    resultsio.write_parquet(pd.concat(
        [outcome_rows("dlib", m, c, v) for m in ("cosine", "euclidean_l2")
         for c, v in (("source_vs_target", [False, False, None]), ("source_vs_result", [False, True, None]))]
        + [outcome_rows("deepid", m, c, [None] * 3, weights) for m in ("cosine", "euclidean_l2")
           for c in ("source_vs_target", "source_vs_result")], ignore_index=True), cell.outcomes)
    resultsio.write_json({"stage": "anonymize", "seed": 0, "command": "/x/bench/__main__.py anonymize",
                          "config": {"choices": {"generator": "faceswap", "paths": "default"}},
                          "libraries": {"numpy": "2.0"},
                          "generator": {"weights": [{"path": "/w/faceswap.onnx", "sha256": "ab" * 32}]},
                          "targets": {"path": "results/sample/targets/t.parquet", "sha256": "cd" * 32}}, cell.provenance)
    resultsio.write_json({"leaks": {"faces_found": 2, "leaking_faces": 1, "unchanged_faces": 0, "missing_output": [],
                                    "detectors": ["dlib_hog"], "per_recognizer": {
                                        "dlib": {"status": "ok", "threshold": 0.07, "faces_compared": 2, "leaks": 1},
                                        "deepid": {"status": weights, "threshold": 0.015, "faces_compared": 0, "leaks": 0}}}},
                         cell.metrics)
    png(cell.leak_sheet, (10, 200, 10), size=(300, 400))
    blur = Cell(results, "sample", "dcgan", "embedding", "random_furthest_ag", "blur")  # anonymized only
    resultsio.write_parquet(pd.DataFrame({"source_face": FACES, "target": "", "result_face": "", "status": "blurred"}),
                            blur.pairs)
    resultsio.write_csv(pd.DataFrame([{"photo": "p.jpg", "faces": 3, "swapped": 0, "fallback": 3, "left_real": 0}]),
                        blur.photo_table)

    tables.run(cfg)  # Tables 1-3 and tables.provenance.json, by the tables stage's writer
    quality = quality_files(results, "sample", "dcgan", "embedding", "random_furthest_ag")
    resultsio.write_csv(pd.DataFrame({"generator": ["faceswap", "blur"], "status": ["ok", "n/a: cell not run"],
                                      "psnr": ["22.6", ""]}), quality["csv"])
    resultsio.write_csv(pd.DataFrame({"claim": ["61% reduction"], "where": ["abstract"], "unit": ["percent"],
                                      "paper": ["61"], "ours": ["n/a: no baseline"], "difference": [""],
                                      "reason": ["other data"]}), paper_files(results)["csv"])
    png(figures_dir(results, "sample", "dcgan") / "fig3_strategies.png", (200, 200, 200), size=(200, 300))
    baseline = BaselineOutputs(results)
    resultsio.write_csv(pd.DataFrame({"recognizer": ["dlib"], "metric": ["cosine"], "status": ["ok"], "tar": ["0.99"]}),
                        baseline.csv)
    png(baseline.roc, (255, 255, 255), size=(100, 300))
    platform = PlatformLayout(results)
    resultsio.write_csv(pd.DataFrame({"access": ["rules"], "leaks": ["0"], "note": ["fakes: faceswap"]}), platform.table_csv)
    png(platform.fig1, (90, 90, 90), size=(2000, 2400))  # over image_max_side: downscaled
    png(platform.view("rules", "p.jpg", "u1", ".png"), (0, 0, 255), size=(120, 160))
    resultsio.write_json({"faces": [{"face": "p.jpg-000", "shown": "fake", "how": "not a friend"}]},
                         platform.view("rules", "p.jpg", "u1", ".json"))
    attack = AttackOutputs(results, "dcgan", "faceswap", "embedding", "random_furthest_ag")
    resultsio.write_csv(pd.DataFrame({"recognizer": ["dlib", "deepid"], "probes": ["real", "real"],
                                      "rank1": ["0.9", weights], "chance": ["0.1", "0.1"]}), attack.table("identification", ".csv"))
    png(attack.distances_figure("dlib"), (250, 250, 250), size=(120, 200))
    resultsio.write_json({"stage": "attack", "seed": 0, "command": "/x/bench/__main__.py attack"}, attack.provenance)
    return results


@pytest.fixture
def built(cfg_factory):
    """(config, the report's index.html) of the fabricated run."""
    cfg = cfg_factory("recognizers=[deepid,dlib]", "report.max_pairs_per_cell=2")
    fabricate(cfg)
    return cfg, report.run(cfg)


class Links(HTMLParser):
    """Every src and href of a page, and the text of its tables' cells."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        for key in ("src", "href"):
            if attrs.get(key):
                self.links.append(attrs[key])


def parse(index: Path) -> Links:
    links = Links()
    links.feed(index.read_text(encoding="utf-8"))
    return links


def test_every_link_resolves_inside_the_report_folder(built):
    cfg, index = built
    folder = report_dir(cfg.results_dir)
    assert index == folder / "index.html"
    links = parse(index)
    assert len(links.images) >= 8  # crops, leak sheet, figures, view
    for link in links.links:
        if link.startswith("#"):
            continue
        url = urlparse(link)
        assert not url.scheme and not url.netloc and not link.startswith("/"), f"{link}: not relative"
        target = (folder / unquote(url.path)).resolve()
        assert folder.resolve() in target.parents, f"{link}: outside the report folder"
        assert target.is_file(), f"{link}: no such file"
    # relocatable: the copies, not the results, are what the page shows
    assert all(link.startswith("files/") for link in links.images)


def test_the_page_shows_each_part_or_says_it_did_not_run(built):
    cfg, index = built
    page = index.read_text(encoding="utf-8")
    for heading in ("Table 1: verified as the same person, cosine distance", "Generator faceswap", "blur · targets queried in embedding space",
                    "Fig. 4: quality", "61% reduction", "Fig. 3/7", "faceswap · targets queried in embedding space",
                    "Faces each recognizer still verifies", "What each viewer sees: rules", "The dataset&#39;s failures",
                    "Provenance records", "Weights (sha256", "python -m bench anonymize",
                    AttackOutputs.TABLES["identification"], "dlib: Source-vs-Result distances", "attack/labelled/dcgan/faceswap"):
        assert heading in page, heading
    # every part has its files but the leak check of the blur cell
    assert re.findall(r'class="status">(.*?)</p>', page) == ["not run: <code>python -m bench leaks</code> for this cell"]
    # the gallery: verdicts (dlib verified p.jpg-001), capped rows, n/a recognizers as notes
    assert 'class="bad" title="verified as the source' in page and 'class="good"' in page
    assert "2 of 3 pairs shown" in page and "p.jpg-001" in page
    assert "deepid: n/a (weights not found at /w/deepid.pth)" in page
    # an n/a cell: its reason as hover text and as a footnote
    assert 'title="weights not found at /w/deepid.pth"' in page and "¹ weights not found at /w/deepid.pth" in page
    # the cell's face left real is marked; the big figure is downscaled
    assert 'title="faces left real: NOT ANONYMIZED"' in page
    from PIL import Image
    with Image.open(report_dir(cfg.results_dir) / "files" / "figures" / "access_fig1.png") as im:
        assert max(im.size) == cfg.report.image_max_side


def test_rerun_writes_the_same_folder(built):
    cfg, index = built
    folder = report_dir(cfg.results_dir)
    first = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    (folder / "stale.txt").write_text("left from an earlier run")
    report.run(cfg)
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == first
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".report")]  # no temporary folder left


def test_empty_results_give_a_page_of_not_run(cfg_factory):
    cfg = cfg_factory()
    page = report.run(cfg).read_text(encoding="utf-8")
    for command in ("tables", "baseline", "quality", "paper", "figures", "attack", "platform", "faces"):
        assert f"not run: <code>python -m bench {command}</code>" in page, command


# ---- in a browser --------------------------------------------------------------------------------

# Injected into a copy of the page: opens every <details>, then after the load event records
# each image's state and each table's rows and rendered height into the DOM that --dump-dom prints.
CHECK_SCRIPT = """<script>
document.querySelectorAll('details').forEach(d => { d.open = true; });
window.addEventListener('load', () => {
  const images = [...document.images].map(i => ({src: i.getAttribute('src'), loaded: i.complete && i.naturalWidth > 0}));
  const tables = [...document.querySelectorAll('table')].map(t => ({
    rows: t.tBodies.length ? t.tBodies[0].rows.length : 0, height: t.getBoundingClientRect().height}));
  const out = document.createElement('pre');
  out.id = 'report-check';
  out.textContent = JSON.stringify({images, tables});
  document.body.appendChild(out);
});
</script>"""


def browser_check(index: Path, profile: Path) -> dict:
    """Opens a copy of `index` (beside it, so its relative links hold) in headless Chromium;
    returns what CHECK_SCRIPT recorded."""
    page = index.with_name("_check.html")
    page.write_text(index.read_text(encoding="utf-8").replace("</body>", CHECK_SCRIPT + "</body>"), encoding="utf-8")
    try:
        done = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1400,1000", "--virtual-time-budget=10000",
             "--dump-dom", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120)
    finally:
        page.unlink()
    found = re.search(r'<pre id="report-check">(.*?)</pre>', done.stdout, re.S)
    assert found, f"Chromium printed no check (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.is_file(),
                    reason=f"needs Debian's chromium (`apt-get install -y chromium`; .ci/run does it as root): {CHROMIUM} is absent")
def test_chromium_loads_every_image_and_renders_every_table(built, tmp_path):
    cfg, index = built
    check = browser_check(index, tmp_path / "chromium-profile")
    assert len(check["images"]) == len(parse(index).images)
    assert [i["src"] for i in check["images"] if not i["loaded"]] == []
    assert check["tables"], "no table on the page"
    assert [t for t in check["tables"] if t["rows"] == 0 or t["height"] <= 0] == []
