#!/bin/bash
# Hand-written leader for the benchmark baseline (PostgreSQL 15, Debian layout).
set -euo pipefail
net=$4
c=/etc/postgresql/15/main
cat > $c/conf.d/raw.conf <<CONF
listen_addresses = '*'
wal_keep_size = '1024MB'
CONF
echo "host replication replicator $net scram-sha-256" >> $c/pg_hba.conf
echo "host all all $net scram-sha-256" >> $c/pg_hba.conf
pg_ctlcluster 15 main restart
runuser -u postgres -- psql -q -c "CREATE ROLE replicator REPLICATION LOGIN PASSWORD 'raw-bench'" \
  -c "SELECT pg_create_physical_replication_slot('pg2')" -c "SELECT pg_create_physical_replication_slot('pg3')" \
  -c "ALTER ROLE postgres PASSWORD 'raw-bench'"
