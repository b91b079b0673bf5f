#!/bin/sh
# Registers the asset-farm namespace and its search attributes on a production Temporal cluster.
# Idempotent: run it on every deploy (docker-compose runs it once the server is up).
# Needs the `temporal` CLI (the temporalio/admin-tools image has it) and TEMPORAL_ADDRESS.
set -eu
here=$(dirname "$0")
ns=$(sed -n 's/.*"namespace": *"\([^"]*\)".*/\1/p' "$here/namespace.json")
days=$(sed -n 's/.*"retentionDays": *\([0-9]*\).*/\1/p' "$here/namespace.json")

until temporal operator cluster health >/dev/null 2>&1; do echo "waiting for Temporal at $TEMPORAL_ADDRESS"; sleep 2; done
temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1 ||
  temporal operator namespace create --namespace "$ns" --retention "${days}d" --description "3D asset processing jobs"

# One "Name": "Type" pair per line in search-attributes.json.
sed -n 's/^ *"\([A-Za-z]*\)": *"\([A-Za-z]*\)".*/\1 \2/p' "$here/search-attributes.json" | while read -r name type; do
  temporal operator search-attribute create --namespace "$ns" --name "$name" --type "$type" --yes >/dev/null 2>&1 || true
  echo "search attribute $name ($type) registered"
done
