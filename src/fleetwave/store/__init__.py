"""Persistence: table definitions, the database handle and its transactions, migrations."""
