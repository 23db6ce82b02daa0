"""``alise demo --quick``: the report has its 7 sections, its figures, and only numbers of results.json."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from alise.cli import main
from alise.demo.report import SECTIONS, _pm, build, num

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory, flanders) -> Path:
    out = tmp_path_factory.mktemp("demo") / "demo-output"
    assert main(["demo", "--out", str(out), "--quick", "--real", str(flanders), "--no-progress", "--seed", "3"]) == 0
    return out


@pytest.fixture(scope="module")
def results(demo_out) -> dict:
    return json.loads((demo_out / "results.json").read_text())


@pytest.mark.slow
def test_every_stage_ran_and_report_has_seven_sections(demo_out, results):
    assert {k: v["status"] for k, v in results["stages"].items()} == {
        k: "ok" for k in ("data", "model", "pretrain", "embeddings", "gapfill", "segmentation", "change")}
    # it evaluates the built-in model, next to its own short pre-training, the random twin and GF
    assert results["meta"]["model"]["builtin"] and results["stages"]["model"]["input_min_clear"] == 0.5
    for task in ("real", "synthetic"):
        assert list(results["stages"]["segmentation"][task]["methods"]) == ["alise", "short", "random", "gf"]
    assert list(results["stages"]["change"]["methods"]) == ["alise", "short", "random", "gf"]
    md = (demo_out / "report.md").read_text()
    html = (demo_out / "report.html").read_text()
    heads = re.findall(r"^## (.+)$", md, flags=re.M)
    assert heads == list(SECTIONS)
    assert re.findall(r"<h2>(.+?)</h2>", html) == list(SECTIONS)
    assert "did not run" not in md
    assert results["meta"]["options"]["seed"] == 3 and results["run"]["seeds"]["demo"] == 3
    assert not list(demo_out.parent.glob(".demo-output.*"))  # the temporary build folder is gone


@pytest.mark.slow
def test_figures_exist_are_png_and_html_is_self_contained(demo_out, results):
    md = (demo_out / "report.md").read_text()
    refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(refs) >= 12
    assert sorted(refs) == sorted(results["figures"].values())
    for ref in refs:
        assert not Path(ref).is_absolute()
        assert (demo_out / ref).read_bytes()[:8] == PNG, ref
    html = (demo_out / "report.html").read_text()
    srcs = re.findall(r'<img src="([^"]{0,40})', html)
    assert len(srcs) == len(refs)
    assert all(s.startswith("data:image/png;base64,") for s in srcs)


@pytest.mark.slow
def test_report_numbers_are_those_of_results_json(demo_out, results):
    md = (demo_out / "report.md").read_text()
    html = (demo_out / "report.html").read_text()
    st = results["stages"]
    expected = []
    for task in ("real", "synthetic"):
        for m in st["segmentation"][task]["methods"].values():
            expected += [_pm(m["macro_f1"]), _pm(m["overall_accuracy"])]
    expected += [f"**{num(m['auc'])}**" for m in st["change"]["methods"].values()]
    h = st["gapfill"]["heldout"]
    expected += [num(h[k]["rmse_dn"], 1) for k in ("alise", "gf")]
    expected += [f"| {k} | ok | {num(v['seconds'], 1)} |" for k, v in st.items()]
    expected += [f"{num(st['pretrain']['steps'])} optimiser steps", num(st["pretrain"]["param_counts"]["encoder_total"])]
    text_html = re.sub(r"<[^>]+>", " ", html)
    for text in expected:
        assert text in md, text
        for part in re.findall(r"\d[\d,]*\.?\d*(?: ± \d+\.\d+)?", text):
            assert part in text_html, part
    # every macro-F1 is a probability and the change table pools the same pixels for every method
    for task in ("real", "synthetic"):
        for m in st["segmentation"][task]["methods"].values():
            assert 0.0 <= m["macro_f1"]["mean"] <= 1.0
    n = {(m["n_change"], m["n_no_change"]) for m in st["change"]["methods"].values()}
    assert len(n) == 1


@pytest.mark.slow
def test_existing_output_refused_and_bad_real_path_is_one_line_error(demo_out, tmp_path, capsys):
    assert main(["demo", "--out", str(demo_out), "--quick"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path / "x"), "--quick", "--real", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--real" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_report_says_when_real_data_is_missing_or_a_stage_failed(results):
    r = copy.deepcopy(results)
    r["stages"]["data"]["real"] = None
    r["stages"]["data"]["real_found"] = "not found (looked in /nowhere)"
    r["stages"]["change"] = {"status": "failed", "reason": "RuntimeError: boom", "seconds": 0.1}
    md = build(r).markdown()
    assert "The real patch was not found" in md and "/nowhere" in md
    assert "**This stage did not run** (failed): RuntimeError: boom" in md
    assert "ROC-AUC" not in md.split("## 6. Change detection")[1].split("## 7.")[0]
