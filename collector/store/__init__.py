"""PostgreSQL/TimescaleDB store: schema migrations, writer and queries."""
