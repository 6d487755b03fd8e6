"""The operator CLI: ``fleetwave policies|rollouts|devices|trigger`` over the HTTP admin API.

It is an HTTP client only: it reads what the server answers and never touches the database,
so it works against any fleetwave server, local or remote, SQLite or PostgreSQL.
"""
