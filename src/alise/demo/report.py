"""The demo report: ``report.md`` (figures referenced relatively) and a self-contained ``report.html``.

Both are rendered from ``results.json`` alone — the report types no number in. The text is first
built as a short list of blocks (heading, paragraph, table, figure, list, code), then rendered to
Markdown and to HTML (figures embedded as base64 PNG), so the two always say the same thing.
Every number goes through :func:`num` (fixed decimals), which the tests use to find the values of
``results.json`` in the report.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from alise.outputs import atomic_file

SECTIONS = ("1. Data", "2. Models and pre-training", "3. Embeddings", "4. Gap-filling", "5. Segmentation (linear probe)",
            "6. Change detection", "7. Run facts")


def num(x, digits: int = 3) -> str:
    """A number as the report prints it (``—`` for None)."""
    if x is None:
        return "—"
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    return f"{float(x):.{digits}f}"


def pct(x) -> str:
    return "—" if x is None else f"{100 * float(x):.1f} %"


def _pm(ms: dict) -> str:
    """``mean ± std (n)`` of a :func:`alise.metrics.mean_std` dict."""
    return f"{num(ms['mean'])} ± {num(ms['std'])}" + (f" (n={ms['n']})" if ms["n"] > 1 else "")


class Doc:
    """Blocks of the report: ``(kind, payload)``."""

    def __init__(self):
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str):
        self.blocks.append(("p", text))

    def table(self, header: list[str], rows: list[list[str]]):
        self.blocks.append(("table", header, rows))

    def fig(self, results: dict, key: str, caption: str):
        path = results.get("figures", {}).get(key)
        if path:
            self.blocks.append(("img", path, caption))

    def items(self, items: list[str]):
        self.blocks.append(("list", items))

    def code(self, text: str):
        self.blocks.append(("code", text))

    # ---------------------------------------------------------------- renderers
    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "table":
                out.append("| " + " | ".join(b[1]) + " |\n|" + "---|" * len(b[1]) + "\n"
                           + "\n".join("| " + " | ".join(r) + " |" for r in b[2]))
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]})\n\n*{b[2]}*")
            elif b[0] == "list":
                out.append("\n".join(f"- {i}" for i in b[1]))
            elif b[0] == "code":
                out.append(f"```\n{b[1]}\n```")
        return "\n\n".join(out) + "\n"

    def html(self, root: Path) -> str:
        body = []
        for b in self.blocks:
            if b[0] == "h":
                body.append(f"<h{b[1]}>{_inline(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                body.append(f"<p>{_inline(b[1])}</p>")
            elif b[0] == "table":
                head = "".join(f"<th>{_inline(c)}</th>" for c in b[1])
                rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in b[2])
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif b[0] == "img":
                data = base64.b64encode((root / b[1]).read_bytes()).decode("ascii")
                body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b[2])}">'
                            f"<figcaption>{_inline(b[2])}</figcaption></figure>")
            elif b[0] == "list":
                body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b[1]) + "</ul>")
            elif b[0] == "code":
                body.append(f"<pre><code>{html.escape(b[1])}</code></pre>")
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ALISE demo report</title>"
                f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "th{background:#f3f3f3}img{max-width:100%}figure{margin:1em 0}figcaption{font-style:italic;color:#555}"
        "code{background:#f3f3f3;padding:1px 3px}pre{background:#f3f3f3;padding:8px;overflow-x:auto}")


def _inline(text: str) -> str:
    """Escape, then the two inline Markdown forms the report uses: **bold** and `code`."""
    t = html.escape(text)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", t)


def _not_run(doc: Doc, results: dict, stage: str) -> bool:
    """Say so when a stage did not complete; True if it did not."""
    rec = results["stages"].get(stage, {})
    if rec.get("status") == "ok":
        return False
    doc.p(f"**This stage did not run** ({rec.get('status', 'not started')}): {rec.get('reason', 'unknown reason')}. "
          "No number is shown for it.")
    return True


# ====================================================================== sections
def _data(doc: Doc, r: dict) -> None:
    d = r["stages"]["data"]
    doc.p("Synthetic series come from `alise synth` (Voronoi parcels, crop rotations over the years, forest "
          "clear-cuts, class phenology, irregular dates, clouds with shadows, Sen2Cor-like SCL). The real patch is "
          "Sentinel-2 L2A over West Flanders with Flemish LPIS crop labels. Clear = SCL 4/5/6.")
    rows = []
    for s, kind in [(x, "synthetic") for x in d.get("synthetic", [])] + ([(d["real"], "real")] if d.get("real") else []):
        rows.append([f"`{s['name']}`", kind, num(s["n_dates"]), f"{s['first']} → {s['last']}",
                     f"{s['height']}×{s['width']}", pct(s["clear_mean"]), num(s["dates_clear_90"]),
                     num(s["dates_clear_0"])])
    doc.table(["series", "kind", "dates", "span", "pixels", "mean clear", "dates ≥ 90 % clear", "dates 0 % clear"], rows)
    if not d.get("real"):
        doc.p(f"**The real patch was not found** ({d.get('real_found')}); this run uses synthetic data only. "
              "Pass `--real PATH` or set `ALISE_SHARED`.")
    else:
        lp = d["real"].get("label_pixels", {})
        if d["real"].get("date_filter"):
            doc.p("Real patch restricted to the dates from {} to {} in this configuration.".format(*d["real"]["date_filter"]))
        doc.p("Real labels (pixels): " + ", ".join(f"{k} {num(v)}" for k, v in lp.items()) + ".")
    doc.fig(r, "timeline", "Acquisition timelines: one tick per date, coloured by its clear fraction.")
    doc.fig(r, "thumbs_synthetic", "Synthetic site along time: true colour (top) and clear mask (bottom, red = cloud, "
                                   "shadow, cirrus or snow).")
    doc.fig(r, "thumbs_real", "Real patch along time: true colour (top) and SCL clear mask (bottom).")


def _models(doc: Doc, r: dict) -> None:
    m = r["stages"]["model"]
    if not _not_run(doc, r, "model"):
        what = "the built-in model" if m["builtin"] else "the model"
        doc.p(f"Evaluated below: {what} **{m['name']}** (weights SHA-256 `{m['sha256'][:12]}…`)."
              + (f" Its card: “{m['card_summary'].rstrip('.')}”." if m.get("card_summary") else "")
              + f" It reads the dates at least "
              f"{pct(m['input_min_clear'])} clear, as it was pre-trained. Its control is its **random twin**: the "
              "same architecture and input statistics, freshly initialised weights, normalisation layers included.")
        if m["builtin"]:
            doc.p("Its pre-training data (model card) include the real patch and the synthetic sites of "
                  "`alise synth --seed 0` (the demo's default seed), without their labels: with `--seed 0` its "
                  "scores below are on series it has seen unlabelled; another `--seed` gives new synthetic sites.")
        doc.table(["block", "parameters"], [[k, num(v)] for k, v in m["param_counts"].items()])
    doc.p("Then the demo pre-trains an encoder of its own for a few minutes on its series, with the built-in "
          "model's recipe, to show the training loop and what a short run gives next to the built-in model.")
    if not _not_run(doc, r, "pretrain"):
        _pretrain(doc, r)


def _pretrain(doc: Doc, r: dict) -> None:
    p = r["stages"]["pretrain"]
    arch = "the paper's architecture (Tables VIII–IX)" if p["arch"] == "paper" else \
        "**reduced widths** (same blocks as the paper, narrower: " + ", ".join(f"{k}={v}" for k, v in p["overrides"].items()) + \
        ") so that it trains within the demo's time budget on 2 CPU cores"
    doc.p(f"ALISE was pre-trained with {arch}: {num(p['steps'])} optimiser steps ({num(p['epochs'])} epochs), batch "
          f"{p['batch_size']} series, crops {p['crop']}×{p['crop']} px, on {p['n_series']} series; validation: "
          f"{p['validation']}. The paper trains 260 epochs on a continental dataset — this is a smoke-scale run.")
    pc = p["param_counts"]
    doc.table(["block", "parameters"], [[k, num(v)] for k, v in pc.items()])
    rows = [[k, num(v, 4)] for k, v in sorted(p["final"].items())]
    rows += [[k, num(v, 4)] for k, v in sorted(p["best"].items()) if k != "epoch"]
    doc.table(["loss term (final train step / selected val epoch)", "value"], rows)
    if p.get("baseline"):
        b = p["baseline"]
        doc.p(f"Held-out reconstruction (val/rec) **{num(b['val_rec'], 4)}** vs. {num(b['band_mean_rec'], 4)} for "
              f"predicting each band's mean: **{num(b['reduction_percent'], 1)} % lower**.")
    doc.p(f"Training time {num(p['train_seconds'], 1)} s: {num(p['steps_per_second'], 2)} steps/s, "
          f"≈ {num(p['pixel_dates_per_second'], 0)} pixel·dates/s.")
    doc.fig(r, "loss", "Pre-training losses per term (rec = cross-reconstruction Eq. 10–11, inv = invariance Eq. 5, "
                       "cov = covariance Eq. 6–7) and learning rate.")


def _embeddings(doc: Doc, r: dict) -> None:
    e = r["stages"]["embeddings"]
    doc.p(f"The aligned representation has Q = {e['n_q']} queries × D = {e['d_model']} channels per pixel whatever "
          "the number of dates. Below, the first three principal components of the features are shown as RGB: all "
          f"queries together, then single queries {', '.join(map(str, e['queries']))} of the evaluated model, then "
          "the demo's short pre-training and the random twin for contrast. Parcels should appear as uniform "
          "patches with sharp edges; a grid or speckle means the encoder has not learnt.")
    for key in ("real", "synthetic"):
        if key in e:
            doc.fig(r, f"pca_{key}", f"{key.capitalize()}: {e[key]['source']} ({num(e[key]['n_dates'])} dates), "
                                     "a clear date, then embedding PCA maps.")


def _gapfill(doc: Doc, r: dict) -> None:
    g = r["stages"]["gapfill"]
    doc.p(f"On `{g['source']}`, for cloudy dates the decoder queries the embedding at the target date (Eq. 8–9). "
          "Each row: the nearest clear image before, the cloudy target, the nearest clear image after, linear "
          "gap-filling of each pixel's clear observations, and the ALISE decoder.")
    doc.table(["target date", "clear", "clear before", "clear after"],
              [[t["date"], pct(t["clear"]), t["before"], t["after"]] for t in g["targets"]])
    doc.fig(r, "gapfill", "Gap-filling at cloudy dates (same colour stretch everywhere).")
    h = g.get("heldout")
    if h:
        doc.p(f"Held-out check: dates {', '.join(g['heldout_dates'])} (≥ 90 % clear) were removed, both methods "
              f"predicted them, errors over {num(h['n_pixels'])} clear pixels × 10 bands (DN = reflectance × 10⁴):")
        doc.table(["method", "RMSE (DN)", "MAE (DN)", "RMSE (normalised)"],
                  [[name, num(h[k]["rmse_dn"], 1), num(h[k]["mae_dn"], 1), num(h[k]["rmse_norm"], 4)]
                   for k, name in (("alise", "ALISE decoder"), ("gf", "linear gap-filling"))])


def _segmentation(doc: Doc, r: dict) -> None:
    s = r["stages"]["segmentation"]
    doc.p(f"Probe: {s['probe']}. Splits: whole {s['block']}×{s['block']} px blocks to train/val/test "
          f"(60/20/20 % of blocks, never pixels), split seeds {', '.join(map(str, s['seeds']))}; macro-F1 over the "
          "classes present in the test truth, unlabelled pixels (id 0) ignored. Test scores, mean ± std over splits:")
    header = ["method"]
    keys = [k for k in ("real", "synthetic") if k in s]
    for k in keys:
        header += [f"{k} macro-F1", f"{k} OA"]
    rows = []
    for m, name in s["methods"].items():
        row = [name]
        for k in keys:
            res = s[k]["methods"][m]
            row += [_pm(res["macro_f1"]), _pm(res["overall_accuracy"])]
        rows.append(row)
    rows.append([f"U-BARN FR: {s['ubarn']}"] + ["—"] * (len(header) - 1))
    doc.table(header, rows)
    for k in keys:
        t = s[k]
        run = t["methods"]["alise"]["runs"][0]  # the same split for every method
        doc.p(f"{t['title']}: {num(run['n_train'])} / {num(run['n_val'])} / {num(run['n_test'])} labelled "
              f"train / val / test pixels (split seed {run['seed']}); features per pixel: "
              + ", ".join(f"{m} {num(n)}" for m, n in t["n_features"].items()) + ".")
        doc.fig(r, f"cm_{k}_alise", f"Confusion matrix, {s['methods']['alise']}, {k} test pixels.")
        doc.fig(r, f"cm_{k}_gf", f"Confusion matrix, GF, {k} test pixels.")


def _change(doc: Doc, r: dict) -> None:
    c = r["stages"]["change"]
    doc.p(f"Each synthetic site's {c['years'][0]} and {c['years'][1]} series are encoded separately; the change score "
          "is the mean squared difference of the two embeddings (Eq. 12), or of the two years' gap-filled reflectance "
          f"on the same day-of-year grid (GF). Truth: the class changed (rotation, clear-cut); background excluded. "
          f"Pooled over {c['sites']} sites:")
    doc.table(["method", "ROC-AUC", "changed px", "unchanged px"],
              [[v["name"], f"**{num(v['auc'])}**", num(v["n_change"]), num(v["n_no_change"])]
               for v in c["methods"].values()])
    doc.fig(r, "roc", "ROC curves of the change scores.")
    doc.fig(r, "change_maps", "Change truth and change scores of the first site.")


def _facts(doc: Doc, r: dict) -> None:
    run, meta = r["run"], r["meta"]
    doc.table(["stage", "status", "seconds"],
              [[k, v.get("status", "?"), num(v.get("seconds"), 1)] for k, v in r["stages"].items()]
              + [["**total**", "", f"**{num(meta['total_seconds'], 1)}**"]])
    enc = r.get("throughput", {}).get("encode")
    if enc and enc.get("pixel_dates_per_second"):
        doc.p(f"Encoding throughput (frozen encoder, inference): {num(enc['pixel_dates_per_second'], 0)} pixel·dates/s "
              f"over {num(enc['pixel_dates'])} pixel·dates. Threads: {meta['torch_threads']} of {meta['cpu_count']} CPUs.")
    doc.p("Versions: " + ", ".join(f"{k} {v}" for k, v in run["versions"].items()) + f"; platform {run['platform']}.")
    doc.p("Seeds: " + ", ".join(f"{k} {v}" for k, v in run["seeds"].items()) + ".")
    doc.p("Reproduce: the whole report (every number above, identical with the same seed and versions):")
    doc.code(run["commands"]["demo"])
    doc.p("Stand-alone commands for each step (paths relative to the output folder; `alise probe` runs the same "
          "L-BFGS probe on the same spatial-block splits):")
    doc.code("\n".join(f"# {k}\n{v}" for k, v in run["commands"].items() if k != "demo"))


def build(r: dict) -> Doc:
    doc = Doc()
    meta = r["meta"]
    ok = sum(v.get("status") == "ok" for v in r["stages"].values())
    doc.h(1, "ALISE demo report")
    doc.p(f"Run started {meta['started_utc']}, preset `{meta['preset']['name']}`, seed {meta['options']['seed']}, "
          f"{num(meta['total_seconds'], 1)} s in total; {ok} of {len(r['stages'])} stages completed. Every number "
          "below was computed in this run (see `results.json`).")
    for title, stage, fn in zip(SECTIONS, ("data", None, "embeddings", "gapfill", "segmentation", "change", None),
                                (_data, _models, _embeddings, _gapfill, _segmentation, _change, _facts)):
        doc.h(2, title)
        if stage is None or not _not_run(doc, r, stage):
            fn(doc, r)
    return doc


def write_reports(results: dict, root: Path) -> None:
    """Write ``root/report.md`` and ``root/report.html`` (figures under ``root/figures``)."""
    doc = build(results)
    with atomic_file(root / "report.md", "w") as f:
        f.write(doc.markdown())
    with atomic_file(root / "report.html", "w") as f:
        f.write(doc.html(root))
