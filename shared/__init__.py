"""Pieces every CPMS service shares: settings, database, broker, HTTP edge, metrics, health."""
