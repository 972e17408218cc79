"""Persistence: the database (models, migrations runner, audit chain) and the encrypted media store."""
