"""onestop: shared pieces used by the node, the hub and sync (CLI, errors, i18n, identity checks)."""

__version__ = "0.1.0"
