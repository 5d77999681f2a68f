"""Alembic environment: runs the migrations on the engine `serving.store.migrate` hands over, or on
`sqlalchemy.url` when Alembic's own command line is used."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from serving.store import Base

config = context.config
engine = config.attributes.get("engine") or create_engine(config.get_main_option("sqlalchemy.url"))

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
