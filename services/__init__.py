"""The CPMS services: ingest, sessions, billing, commands."""
