"""Errors shared by every layer: defined here, below the core's users, so nothing imports upwards.

``UserError`` is a problem with what the user asked for (a missing file, an option that does not
fit): the command line prints it without a traceback. The benchmarks and the command-line
commands raise it; ``litepose_ros.cli`` catches it.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with what the user asked for; printed without a traceback."""
