"""The numbers ``--help`` states as defaults are the defaults the code uses."""

from __future__ import annotations

import argparse
import re
from dataclasses import fields

from alise.cli import build_parser

#: "... (3000)", "... (default 0.3)", "... (default: 1)" at the end of an option's help.
DEFAULT_IN_HELP = re.compile(r"\((?:default:?\s*)?(-?[0-9][0-9,.]*(?:e-?\d+)?)\)\s*$")


def _subparsers():
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices.items()


def _resolved_default(command: str, action: argparse.Action):
    """What the command uses when the option is not given (None defaults are resolved later)."""
    if action.default is not None:
        return action.default
    from alise.commands._protocol import BUDGET_OPTIONS
    from alise.data.validity import DEFAULT_CLEAR_SCL
    from alise.downstream.probe import ProbeConfig

    if action.dest in BUDGET_OPTIONS:  # probe: ProbeConfig's; compare: the default preset "paper" has no protocol
        return {f.name: f.default for f in fields(ProbeConfig)}[action.dest]
    if action.dest == "clear_scl":
        return ",".join(map(str, sorted(DEFAULT_CLEAR_SCL)))
    raise AssertionError(f"{command} --{action.dest}: help states a default but the option has none")


def _same(text: str, value) -> bool:
    if isinstance(value, (list, tuple)):
        value = ",".join(map(str, value))
    if isinstance(value, str):
        return text == value
    return float(text.replace(",", "")) == float(value)


def test_every_default_stated_in_help_is_the_real_one():
    seen = 0
    for command, parser in _subparsers():
        for action in parser._actions:
            m = DEFAULT_IN_HELP.search(action.help or "")
            if m:
                seen += 1
                value = _resolved_default(command, action)
                assert _same(m.group(1), value), f"alise {command} --{action.dest}: help says {m.group(1)}, code {value!r}"
    assert seen >= 30


def test_the_demo_help_states_its_pre_training_steps():
    from alise.demo.state import PRESETS

    parser = dict(_subparsers())["demo"]
    text = next(a.help for a in parser._actions if a.dest == "max_steps")
    assert f"default: {PRESETS['full'].max_steps}, --quick: {PRESETS['quick'].max_steps}" in text


def test_help_imports_no_torch_nor_matplotlib():
    """``alise --help`` and every ``alise CMD --help`` build the parser without the heavy libraries
    (each command imports them in ``run``), so help answers at once."""
    import subprocess
    import sys

    code = ("import sys; from alise.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'matplotlib', 'rasterio', 'xarray', 'dask') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
