"""Alembic migrations of the registry's database, applied at start by ``plugport serve``."""
