"""Error types shared by every layer.

:class:`InputError` marks a problem the user caused and can fix (a bad config value, a missing
or corrupt file, labels out of range). It is a ``ValueError``, so library callers can keep
catching ``ValueError``; the command line turns it into one line ``aucseg CMD: error: ...``
with exit code 2, and lets every other exception (a bug) show its traceback.
"""

from __future__ import annotations

__all__ = ["CheckpointError", "InputError"]


class InputError(ValueError):
    """Bad input from the user; the message states the cause and the fix."""


class CheckpointError(InputError):
    """A checkpoint file that cannot be used: corrupt, truncated, foreign or mismatched."""
