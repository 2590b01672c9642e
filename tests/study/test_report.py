"""report.html of a real study (Ray in-process, Optuna + ASHA, digits, tiny budget): every
section present with its plots, every image embedded, `imbtrain report` on the folder, and
the page opened in headless Chromium (skipped where /usr/bin/chromium is absent)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from imbtrain.study.report import REPORT_FILE, SECTIONS, render_report

SPACE = """
base: {dataset: digits, model: mlp, epochs: 2, lr: 0.1}
knobs:
  batch_size: {choice: [32, 128]}
  smoothing_eps: {uniform: [0.0, 0.2]}
train_ratios: [0.1]
seeds: [0]
searcher: {type: optuna, num_samples: 3, seed: 0}
scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
resources: {cpus: 1}
"""
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def study(ray_session, tmp_path_factory) -> Path:
    from imbtrain.tune import run_study

    tmp = tmp_path_factory.mktemp("report")
    space = tmp / "space.yaml"
    space.write_text(textwrap.dedent(SPACE))
    result = run_study(str(space), name="tiny", storage=str(tmp / "runs"), mlflow_uri=None)
    assert len(result.results) == 3
    return result.path


def sections(page: str) -> dict[str, str]:
    found = re.findall(r'<section id="([^"]+)">(.*?)</section>', page, flags=re.S)
    return dict(found)


def test_every_section_with_its_plots_embedded(study):
    page = render_report(study)
    body = sections(page)
    assert list(body) == list(SECTIONS)
    for name in ("data", "compute", "per-class", "curves", "sensitivity"):
        assert "<img src=\"data:image/png;base64," in body[name], name
    # Three trials of digits: the best section names a trial, the searched one both knobs.
    assert "batch_size" in body["searched"] and "smoothing_eps" in body["searched"]
    assert "Best trial <b>" in body["best"]
    assert "Optuna fanova" in body["sensitivity"]
    # Nothing outside the page: every src is a data URI, no link, no script.
    srcs = re.findall(r'src="([^"]+)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script" not in page and "href=" not in page
    for src in srcs:  # each image is a whole PNG
        raw = base64.b64decode(src.split(",", 1)[1])
        assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[-8:-4] == b"IEND"
    # digits at r=0.1: the exp profile's train counts, n_max 119 down to 12 (10 classes).
    assert "<td>119</td>" in body["data"] and "<td>12</td>" in body["data"]


def test_cli_writes_report_html(study, capsys):
    from imbtrain.cli import main

    assert main(["report", str(study)]) == 0
    assert f"wrote {study / REPORT_FILE}" in capsys.readouterr().out
    assert (study / REPORT_FILE).read_text().startswith("<!DOCTYPE html>")


def test_cli_report_of_no_study(tmp_path, capsys):
    from imbtrain.cli import main

    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results.parquet" in err[0]
    assert not (tmp_path / REPORT_FILE).exists()


@pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="no /usr/bin/chromium here")
def test_headless_chromium_screenshot(study, tmp_path):
    from imbtrain.study.report import write_report

    page = write_report(study, tmp_path / "page" / REPORT_FILE)
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-network-access", f"--screenshot={shot}",
                    "--window-size=1200,6000", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    raw = shot.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    img = Image.open(shot).convert("L")
    # Plots drawn: a page of text alone is nearly all white; ours is not.
    dark = sum(1 for v in img.getdata() if v < 200)
    assert dark > 0.01 * img.width * img.height
    assert shutil.which(CHROMIUM) or True
