"""Create the PostgreSQL database named in DATABASE_URL if it does not exist yet.

DATABASE_URL=postgres://postgres@127.0.0.1:5432/ccphost python tools/ensure_database.py
"""

import os
import sys
from urllib.parse import urlsplit

import psycopg
from psycopg import sql


def main() -> int:
    url = os.environ.get("DATABASE_URL", "")
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        print("DATABASE_URL is not a PostgreSQL URL; nothing to create.")
        return 0
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"Created database {name}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
