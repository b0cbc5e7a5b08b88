"""Storage: SQLAlchemy models and the repository functions. The only SQLAlchemy code lives here."""
