"""The comparison table: a Markdown + JSON rendering of [P] Table II for the models run here.

Columns follow the paper: model, pre-training data, trainable parameters, macro-F1 mean ± std
over the runs (folds or split seeds), in percent. A last column recalls the paper's PASTIS
value for orientation only — it was measured on another dataset with full training budgets.
"""

from __future__ import annotations

#: kind → (display name, pre-training data in the paper, trainable parameters, PASTIS F1) from [P] Table II.
PAPER: dict[str, tuple[str, str, str, str]] = {
    "alise-ft": ("ALISE^FT", "multi-year European dataset", "1.1M", "80.8 ± 1.6"),
    "alise-fs": ("ALISE^FS", "✗", "1.1M", "79.9 ± 1.0"),
    "alise-lp": ("ALISE^LP", "multi-year European dataset", "12.2K", "68.2 ± 2.2"),
    "presto-lp": ("Presto^LP", "worldwide", "2.5K", "26.7 ± 1.0"),
    "ubarn-ft": ("U-BARN^FT", "multi-year European dataset", "1.1M", "80.9 ± 1.7"),
    "ubarn-fs": ("U-BARN^FS", "✗", "1.1M", "79.5 ± 1.3"),
    "ubarn-fr": ("U-BARN^FR", "multi-year European dataset", "13.8K", "59.4 ± 2.8"),
    "utae": ("U-TAE", "✗", "1.1M", "80.9 ± 2.4"),
    "gf-lp": ("GF^LP", "✗", "–", "–"),
    "median-lp": ("monthly medians^LP", "✗", "–", "–"),
}


def human_count(n: int) -> str:
    """Parameter count the way the paper prints it: 12,179 → "12.2K", 1,122,515 → "1.1M"."""
    n = int(n)
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 1_000:
        return f"{n / 1e3:.1f}K"
    return str(n)


def model_entry(kind: str, pretraining: str, trainable_parameters: int, macro_f1: dict, metrics_file: str,
                details: dict | None = None) -> dict:
    """One row of ``comparison.json`` (``macro_f1`` is :func:`alise.metrics.mean_std` of the runs)."""
    name, paper_pt, paper_params, paper_f1 = PAPER[kind]
    return {"kind": kind, "name": name, "pretraining": pretraining, "trainable_parameters": int(trainable_parameters),
            "trainable_parameters_text": human_count(trainable_parameters), "macro_f1": macro_f1,
            "paper": {"pretraining": paper_pt, "trainable_parameters": paper_params, "pastis_f1": paper_f1},
            "metrics_file": metrics_file, "details": details or {}}


def _fit_text(details: dict) -> str:
    solver, stopped = details.get("solver"), details.get("stopped")
    return f"{solver}, {stopped}" if solver else "–"


def render_markdown(report: dict) -> str:
    """``comparison.md`` from the ``comparison.json`` content."""
    lines = [f"# Model comparison ({report['metric_name']})", "",
             f"Data: {', '.join(f'`{d}`' for d in report['data'])} — {report['n_series']} series, "
             f"{report['num_classes']} classes (ignored: {', '.join(map(str, report['ignore'])) or 'none'}).",
             f"Split: {report['split_text']}; {report['n_runs']} run(s); protocol: {report['protocol_text']}.", "",
             "| model | pre-training data | trainable parameters | macro-F1 (%) | fit (how it stopped) | paper, PASTIS (%) |",
             "|---|---|---:|---:|---|---:|"]
    for m in report["models"]:
        f1 = m["macro_f1"]
        score = f"{100 * f1['mean']:.1f} ± {100 * f1['std']:.1f}"
        lines.append(f"| {m['name']} | {m['pretraining']} | {m['trainable_parameters_text']} "
                     f"({m['trainable_parameters']:,}) | {score} | {_fit_text(m.get('details', {}))} "
                     f"| {m['paper']['pastis_f1']} |")
    lines += ["", "Macro-F1: mean ± std (population) over the runs, per-class F1 averaged over the labelled "
                  "classes present in the test truth; background/void ignored (`alise.metrics`). "
                  "Per-model details (per-class F1, confusion, training history): `<model>/metrics.json`.", ""]
    if report.get("pretraining_runs"):
        lines += ["Pre-training done by this command:", ""]
        lines += [f"- {k}: {v}" for k, v in report["pretraining_runs"].items()]
        lines.append("")
    lines += [f"Command: `{report['command']}`", ""]
    return "\n".join(lines)
