"""Subcommands of the ``ferlib`` CLI, one module each (see :mod:`ferlib.cli`)."""
