#!/bin/bash
# Hand-written follower for the benchmark baseline.
set -euo pipefail
leader=$2
name=$3
net=$4
c=/etc/postgresql/15/main
echo "listen_addresses = '*'" > $c/conf.d/raw.conf
echo "host all all $net scram-sha-256" >> $c/pg_hba.conf
pg_ctlcluster 15 main stop || true
rm -rf /var/lib/postgresql/15/main
echo "*:*:*:replicator:raw-bench" > ~postgres/.pgpass
chown postgres: ~postgres/.pgpass
chmod 600 ~postgres/.pgpass
runuser -u postgres -- pg_basebackup -h "$leader" -U replicator -D /var/lib/postgresql/15/main -X stream -S "$name"
cat >> /var/lib/postgresql/15/main/postgresql.auto.conf <<CONF
primary_conninfo = 'host=$leader user=replicator application_name=$name'
primary_slot_name = '$name'
CONF
touch /var/lib/postgresql/15/main/standby.signal
chown -R postgres: /var/lib/postgresql/15/main
pg_ctlcluster 15 main start
