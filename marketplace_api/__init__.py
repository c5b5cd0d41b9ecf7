"""Marketplace API (DESIGN §9): the REST order book, the chain indexer and their database.

``main.create_app`` builds the FastAPI app; ``core/config.py`` holds the settings (``VERITRAIN_*``),
``models.py`` the SQLAlchemy models (migrations in ``migrations/``, applied by ``migrate.upgrade``),
``book.py`` the order-book rules, ``indexer.py`` the chain indexer, ``api/routes/`` one router per resource.
"""

from marketplace_api.main import create_app

__all__ = ["create_app"]
