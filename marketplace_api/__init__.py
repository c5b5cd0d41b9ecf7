"""Marketplace API: FastAPI app, SQLAlchemy models, chain indexer and auditor web pages."""
