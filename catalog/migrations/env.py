"""Alembic environment: migrations run against the URL the caller configured."""

from alembic import context
from sqlalchemy import create_engine, pool

from catalog.state import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, version_table="archivist_alembic_version"
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
