"""The import rules of docs/architecture.md: layers import downwards only, and no module imports
itself back through others (function-level imports count: a lazy import is still a dependency)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Bottom-up; a module may import from its own layer and the layers below (docs/architecture.md).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("alise._version", "alise.errors", "alise.outputs", "alise.dates", "alise.batch",
                    "alise.normalise", "alise.metrics", "alise.splits", "alise.plots")),
    ("model", ("alise.model",)),
    ("weights", ("alise.weights",)),
    ("data", ("alise.data", "alise.synth")),
    ("engines", ("alise.encode", "alise.baselines", "alise.train")),
    ("downstream", ("alise.downstream",)),
    ("compare", ("alise.compare",)),
    ("api", ("alise.api", "alise.xarray")),
    ("demo", ("alise.demo",)),
    ("interface", ("alise.commands", "alise.cli", "alise")),
]


def modules() -> dict[str, Path]:
    out = {}
    for p in (SRC / "alise").rglob("*.py"):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = modules()


def resolve(name: str) -> str | None:
    """The module (or package) of ``alise.x.y.Name``: the longest prefix that is a module."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(name: str) -> list[tuple[str, int]]:
    """``(imported alise module, line)`` for every import statement of module ``name``."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [resolve(f"{base}.{a.name}") if f"{base}.{a.name}" in MODULES else resolve(base)
                       for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [resolve(a.name) for a in node.names]
        else:
            continue
        found += [(t, node.lineno) for t in targets if t and t.startswith("alise") and t != name]
    return found


def layer_of(name: str) -> int:
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for pre in prefixes:
            if (name == pre or name.startswith(pre + ".")) and len(pre) > best_len:
                best, best_len = i, len(pre)
    assert best is not None, f"{name} belongs to no layer: add it to LAYERS and docs/architecture.md"
    return best


def test_every_module_has_a_layer():
    for name in MODULES:
        layer_of(name)


def test_no_module_imports_from_a_layer_above_it():
    upward = []
    for name in sorted(MODULES):
        for target, line in imports(name):
            if layer_of(target) > layer_of(name):
                upward.append(f"{MODULES[name].relative_to(SRC.parent)}:{line}: {name} ({LAYERS[layer_of(name)][0]}) "
                              f"imports {target} ({LAYERS[layer_of(target)][0]})")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_circle():
    graph = {name: sorted({t for t, _ in imports(name)}) for name in MODULES}
    state: dict[str, int] = {}  # 1 visiting, 2 done
    circles = []

    def visit(v: str, path: list[str]) -> None:
        state[v] = 1
        for w in graph[v]:
            if state.get(w) == 1:
                circles.append(" → ".join(path[path.index(w):] + [w]))
            elif w not in state:
                visit(w, path + [w])
        state[v] = 2

    for v in sorted(graph):
        if v not in state:
            visit(v, [v])
    assert not circles, "import circles:\n" + "\n".join(circles)


@pytest.mark.parametrize("bad", ["upward", "circle"])
def test_the_rules_catch_a_violation(bad, monkeypatch):
    """The checks themselves: a fake upward import and a fake circle are reported."""
    real = imports

    def fake(name):
        extra = []
        if bad == "upward" and name == "alise.errors":
            extra = [("alise.cli", 1)]
        if bad == "circle" and name == "alise.dates":
            extra = [("alise.batch", 1)]
        if bad == "circle" and name == "alise.batch":
            extra = [("alise.dates", 1)]
        return real(name) + extra

    monkeypatch.setitem(globals(), "imports", fake)
    check = test_no_module_imports_from_a_layer_above_it if bad == "upward" else test_no_import_circle
    with pytest.raises(AssertionError, match="alise.cli" if bad == "upward" else "alise.dates"):
        check()


# ---------------------------------------------------------------------------------------------
# Citations of the specification resolve inside the repository.

ROOT = SRC.parent
CITATION = re.compile(r"docs/(reference|design)\.md (§\d+(?:\.\d+)?(?:–§?\d+(?:\.\d+)?)?|[PD]\d+)")


def _anchors(doc: str) -> set[str]:
    """``§1``, ``§1.2`` for every numbered heading of ``doc``, ``Dn`` / ``Pn`` for its §10 entries."""
    text = (ROOT / "docs" / doc).read_text()
    out = {f"§{m.group(1)}" for m in re.finditer(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, re.M)}
    out |= set(re.findall(r"^\| (D\d+) \|", text, re.M)) | set(re.findall(r"^\* \*\*(P\d+)", text, re.M))
    return out


def citations() -> list[tuple[str, str, str]]:
    """``(where, doc, anchor)`` of every citation in the code, tests and docs."""
    found = []
    for folder in ("src", "tests", "docs", "benchmarks"):
        for p in sorted((ROOT / folder).rglob("*")):
            if p.suffix not in (".py", ".md"):
                continue
            for i, line in enumerate(p.read_text().splitlines(), start=1):
                for m in CITATION.finditer(line):
                    for part in re.split(r"–§?", m.group(2)):
                        anchor = part if part[0] in "PD§" else f"§{part}"
                        found.append((f"{p.relative_to(ROOT)}:{i}", f"{m.group(1)}.md", anchor))
    return found


def test_specification_citations_resolve_inside_the_repository():
    cites = citations()
    assert len(cites) > 50  # the code does cite the specification
    anchors = {doc: _anchors(doc) for doc in ("reference.md", "design.md")}
    assert {"§1.2", "§6.5", "§11", "D14", "P4"} <= anchors["reference.md"] and "§9" in anchors["design.md"]
    assert "§12" not in anchors["reference.md"] and "P99" not in anchors["reference.md"]
    dangling = [f"{where}: docs/{doc} {a}" for where, doc, a in cites if a not in anchors[doc]]
    assert not dangling, "citations to sections that do not exist:\n" + "\n".join(dangling)
