"""Alembic migrations of the marketplace database (shipped inside the package)."""
