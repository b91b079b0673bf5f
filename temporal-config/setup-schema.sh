#!/bin/sh
# Creates or upgrades Temporal's PostgreSQL schemas (the default store and SQL visibility) to what the
# server image of the same version expects. Idempotent: docker-compose runs it before every server start.
# temporalio/auto-setup did this inside the server container; it stopped at 1.29 and has no 1.32 image,
# so the admin-tools image of the server's version does it instead. Needs POSTGRES_SEEDS, POSTGRES_USER,
# SQL_PASSWORD.
set -eu
port=${DB_PORT:-5432}
until nc -z "$POSTGRES_SEEDS" "$port"; do echo "waiting for PostgreSQL at $POSTGRES_SEEDS:$port"; sleep 2; done
schemas=/etc/temporal/schema/postgresql/v12
for db in temporal temporal_visibility; do
  dir=$([ "$db" = temporal ] && echo temporal || echo visibility)
  tool="temporal-sql-tool --plugin postgres12 --ep $POSTGRES_SEEDS -u $POSTGRES_USER -p $port --db $db"
  $tool create >/dev/null 2>&1 || echo "database $db exists"
  # setup-schema -v 0.0 is a no-op on a database that already has a schema version.
  $tool setup-schema -v 0.0
  $tool update-schema -d "$schemas/$dir/versioned"
  echo "schema $db up to date"
done
