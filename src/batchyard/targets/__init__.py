"""Target databases (SQLite, PostgreSQL) where validated records are applied exactly once."""

from batchyard.targets.target import Target, TargetTransaction, open_target

__all__ = ["Target", "TargetTransaction", "open_target"]
