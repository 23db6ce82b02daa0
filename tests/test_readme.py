"""The README's tour is runnable: every command of its ``bash`` block runs and exits 0.

The commands run exactly as written (paths to ``../shared`` point to the shared folder beside the
repository), with one substitution to keep CI short: pre-training uses a smaller network
(``--set`` overrides).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from alise.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"

SMALL = ["--set", "encoder_widths=8,8,8,16", "decoder_widths=8,8,8,16", "d_model=16", "n_heads=2", "d_ffn=32",
         "proj_d_k=4", "d_emb=16", "d_proj_hidden=16", "n_layers=1"]


def tour_commands() -> list[list[str]]:
    text = README.read_text()
    block = re.search(r"## A short tour.*?```bash\n(.*?)```", text, re.S).group(1)
    return [shlex.split(line) for line in block.splitlines() if line.strip().startswith("alise ")]


@pytest.mark.slow
def test_readme_tour_runs(tmp_path, monkeypatch, capsys, flanders):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shared").symlink_to(flanders.parents[1])  # flanders = <shared>/data/worldcereal-flanders-2018
    commands = tour_commands()
    assert [c[1] for c in commands] == ["check", "models", "encode", "preview", "probe", "classify", "synth", "change", "change",
                                        "reconstruct", "pretrain", "info", "probe", "compare", "import-onnx"]
    for argv in commands:
        args = [a.replace("../shared", "shared") for a in argv[1:]]
        if args[0] == "pretrain":
            args += SMALL
        code = main(args)
        assert code == 0, f"`{shlex.join(argv)}` exited {code}: {capsys.readouterr().err[-2000:]}"
    assert (tmp_path / "emb.tif").is_file() and (tmp_path / "emb.png").is_file() and (tmp_path / "classes.tif").is_file() and (tmp_path / "cmp" / "comparison.md").is_file()


def python_blocks() -> list[str]:
    """The ``python`` blocks of the README's Python section, in order."""
    section = re.search(r"## Python\n(.*?)\n## ", README.read_text(), re.S).group(1)
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_python_snippet_runs(tmp_path, monkeypatch, flanders):
    import warnings

    import numpy as np

    import alise.model.network
    from alise.errors import AliseInputWarning

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(alise.model.network, "_WARNED", set())  # the snippets must not trip the input checks
    (tmp_path / "shared").symlink_to(flanders.parents[1])
    blocks = python_blocks()
    assert len(blocks) == 2 and "alise.encode_array" in blocks[0] and "model.norm.apply" in blocks[1]
    scope: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", AliseInputWarning)
        for code in blocks:  # one after the other in one namespace, as a reader would type them
            exec(compile(code.replace("../shared", "shared"), "README.md", "exec"), scope)
    y, model, src, emb = scope["y"], scope["model"], scope["src"], scope["emb"]
    assert tuple(y.shape) == (1, model.config.n_q, model.config.d_model, 64, 64) and not y.requires_grad
    assert src.n_dates == 118
    assert isinstance(emb, np.ndarray) and emb.dtype == np.float32
    assert emb.shape == (model.config.n_q, model.config.d_model, 64, 64) and np.isfinite(emb).mean() > 0.9
