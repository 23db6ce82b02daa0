"""docs/baselines.md is runnable: its Python example executes and gives the stated shapes."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "baselines.md"


def test_docs_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1
    scope: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), scope)
    assert tuple(scope["logits"].shape) == (1, 19, 32, 32)
    assert tuple(scope["z"].shape) == (128, 32, 32)
    assert scope["comp"].shape[0] == scope["month"].shape[0] == scope["comp_valid"].shape[0]
