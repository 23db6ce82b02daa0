"""The one exception type for user mistakes.

Anything the user can fix (a bad path, a malformed raster, an absurd argument) raises
:class:`AliseError` with a message that says *what* is wrong, *where* (file, date, band) and, when
useful, *how* to fix it. The command line prints it on one line and exits with code 2; any other
exception is our bug and keeps its traceback.
"""

from __future__ import annotations


class AliseError(Exception):
    """A user-facing error: one line, says what and where. The CLI exits 2 on it."""

    def __init__(self, message: str):
        # Keep the message on one line whatever the caller passed.
        super().__init__(" ".join(str(message).split()))


class AliseInputWarning(UserWarning):
    """Input that the model accepts but that is very probably a mistake: digital numbers where
    normalised reflectance is expected, day-of-year or Unix-epoch days where days since 2014-03-03
    are expected. Issued once per process and kind (:meth:`alise.model.ALISE.encode`); silence it with
    ``warnings.filterwarnings("ignore", category=AliseInputWarning)``."""
