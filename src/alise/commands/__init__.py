"""One module per ``alise`` sub-command (discovered by :mod:`alise.cli`)."""
