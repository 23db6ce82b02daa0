"""docs/data-formats.md is runnable: its Python example runs on the real data."""

from __future__ import annotations

import re
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-formats.md"


def test_python_example_runs(flanders, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks
    torch.manual_seed(0)
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), {"data": str(flanders)})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("(60, 10, 32, 32)") and out[1] == "4 torch.Size([60, 10, 32, 32])"
