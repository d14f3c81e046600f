#!/bin/sh
# Runs inside the PostgreSQL image's Debian root (an mmdebstrap customize hook) after
# pgvector is built: drops the compilers and what Debian's postinst set up for a
# system service, and makes the directories of the official images' layout.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get purge -y -qq --autoremove gcc make libc6-dev >/dev/null
# The default cluster of postgresql-common: the entrypoint makes its own in $PGDATA.
rm -rf /etc/postgresql/15 /var/lib/postgresql/15
# No private key baked into an image (ssl-cert's snakeoil pair; the cluster has ssl off).
rm -f /etc/ssl/private/ssl-cert-snakeoil.key /etc/ssl/certs/ssl-cert-snakeoil.pem
find /etc/ssl/certs -xtype l -delete
# /run is emptied here instead of by mmdebstrap, which would also drop the socket directory.
rm -rf /run/* 2>/dev/null || :
install -d -o postgres -g postgres -m 3777 /run/postgresql
install -d -o postgres -g postgres -m 1777 /var/lib/postgresql/data
install -d -m 0755 /docker-entrypoint-initdb.d
