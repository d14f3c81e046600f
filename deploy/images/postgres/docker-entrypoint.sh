#!/bin/sh
# PostgreSQL entrypoint for the offline images: the environment contract of the official
# postgres / pgvector images, in POSIX sh over Debian's packages.
#
#   POSTGRES_PASSWORD (or _FILE)   the superuser's password; required unless
#                                  POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_USER (or _FILE)       the superuser's name (default postgres)
#   POSTGRES_DB (or _FILE)         a database created at first start (default: $POSTGRES_USER)
#   POSTGRES_INITDB_ARGS           extra initdb arguments
#   POSTGRES_HOST_AUTH_METHOD      pg_hba method for TCP clients (default scram-sha-256)
#   PGDATA                         the cluster (default /var/lib/postgresql/data)
#   /docker-entrypoint-initdb.d    *.sh (run when executable, else sourced), *.sql,
#                                  *.sql.gz, *.sql.xz run once, in order, on a fresh cluster,
#                                  against a server that listens on its Unix socket only
#
# Started as root it prepares the directories and re-executes itself as the unprivileged
# `postgres` user (PostgreSQL refuses to run as root); under `--user` it runs as given.
set -eu

log() { printf '%s [entrypoint] %s\n' "$(date '+%Y-%m-%d %H:%M:%S %Z')" "$*"; }
die() { log "error: $*" >&2; exit 1; }

# file_env VAR [DEFAULT]: VAR from $VAR or from the file named by $VAR_FILE, not both.
file_env() {
	var=$1 def=${2:-}
	eval "val=\${$var:-} fval=\${${var}_FILE:-}"
	if [ -n "$val" ] && [ -n "$fval" ]; then
		die "both $var and ${var}_FILE are set (but are exclusive)"
	fi
	if [ -n "$fval" ]; then
		val=$(cat "$fval") || die "cannot read ${var}_FILE ($fval)"
	fi
	[ -n "$val" ] || val=$def
	export "$var=$val"
	unset "${var}_FILE"
}

# First argument a flag: it is for postgres.
case "${1:-}" in -*) set -- postgres "$@" ;; esac

if [ "${1:-}" != postgres ]; then
	exec "$@"
fi
# `postgres --help`, `--version` and friends need no cluster.
for a in "$@"; do
	case "$a" in -'?' | --help | --describe-config | -V | --version) exec "$@" ;; esac
done

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

if [ "$(id -u)" = 0 ]; then
	# Read the secrets while still root (the files may be root's), then drop privileges.
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	mkdir -p "$PGDATA" /var/run/postgresql
	chmod 3777 /var/run/postgresql
	chown postgres:postgres /var/run/postgresql
	find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
	chmod 700 "$PGDATA" 2>/dev/null || :
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

file_env POSTGRES_PASSWORD
file_env POSTGRES_USER postgres
file_env POSTGRES_DB "$POSTGRES_USER"
file_env POSTGRES_INITDB_ARGS
: "${POSTGRES_HOST_AUTH_METHOD:=}"

mkdir -p "$PGDATA"
chmod 700 "$PGDATA" 2>/dev/null || :

psql_run() { # the psql the init scripts get: socket only, stops at the first error
	psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		die "the database is uninitialised and no superuser password is set: set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), or POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without one"
	fi
	log "initialising a cluster in $PGDATA for superuser $POSTGRES_USER"
	pwfile=$(mktemp)
	printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	# As the official images: initdb's defaults inside (socket and loopback), then one
	# line for every other TCP client.
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a word list by contract
	out=$(initdb --username="$POSTGRES_USER" --pwfile="$pwfile" $POSTGRES_INITDB_ARGS 2>&1) ||
		{ rm -f "$pwfile"; printf '%s\n' "$out" >&2; die "initdb failed"; }
	rm -f "$pwfile"
	{
		echo
		echo "# docker: TCP clients from anywhere, by ${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
		echo "host all all all ${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
	} >>"$PGDATA/pg_hba.conf"
	echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"

	# A server for the init scripts: Unix socket only, so nothing outside (and no
	# healthcheck over TCP) sees it before the real server starts. Its log shows, so
	# "ready to accept connections" appears twice, as with the official images (the
	# testcontainers postgres module waits for the second).
	PGPASSWORD=${PGPASSWORD:-$POSTGRES_PASSWORD}
	export PGPASSWORD
	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
	if [ "$POSTGRES_DB" != postgres ]; then
		psql_run --dbname postgres --set db="$POSTGRES_DB" <<-'SQL' >/dev/null
			CREATE DATABASE :"db";
		SQL
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sh)
			if [ -x "$f" ]; then
				log "running $f"
				"$f"
			else
				log "sourcing $f"
				# shellcheck disable=SC1090
				. "$f"
			fi
			;;
		*.sql) log "running $f" && psql_run --dbname "$POSTGRES_DB" -f "$f" >/dev/null ;;
		*.sql.gz) log "running $f" && gzip -dc "$f" | psql_run --dbname "$POSTGRES_DB" >/dev/null ;;
		*.sql.xz) log "running $f" && xz -dc "$f" | psql_run --dbname "$POSTGRES_DB" >/dev/null ;;
		*) log "ignoring $f" ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop
	unset PGPASSWORD
	log "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
