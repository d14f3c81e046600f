#!/usr/bin/env bash
# `make images-smoke`: runs the local images of .cache/images/images.env (make images)
# the way the official ones are used and checks their contract:
#   pgvector   POSTGRES_USER / POSTGRES_PASSWORD_FILE / POSTGRES_DB, an initdb.d *.sql and
#              *.sh, CREATE EXTENSION vector and a vector(3) round trip from another
#              container with the password, a wrong one refused, postgres running as `postgres`
#   postgres   the same server without pgvector: CREATE EXTENSION vector is refused
#   valkey     `valkey-server --save "" --appendonly no`, PING, protected mode off
#   step-ca    a CA made by `step ca init` in a volume, served as uid 1000 on a read-only
#              root without capabilities (as the compose file runs it), `step ca health`
#   toxiproxy  the API answers `toxiproxy-cli list`
#   gateway    the binary runs, as uid 65532
# Every container and volume carries the label mosaic.test=images-smoke and is removed
# at the end.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
docker=${DOCKER:-docker}
env_file=$root/.cache/images/images.env
label=mosaic.test=images-smoke
[ -f "$env_file" ] || {
	echo "smoke: no $env_file: run make images first" >&2
	exit 1
}
# shellcheck disable=SC1090
. "$env_file"

start=$(date +%s)
fails=0
tmp=$(mktemp -d)
cleanup() {
	local ids
	ids=$("$docker" ps -aq --filter "label=$label")
	[ -z "$ids" ] || "$docker" rm -f -v $ids >/dev/null
	ids=$("$docker" volume ls -q --filter "label=$label")
	[ -z "$ids" ] || "$docker" volume rm $ids >/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
ok() { printf 'smoke: ok    %s\n' "$*"; }
bad() {
	printf 'smoke: FAIL  %s\n' "$*"
	fails=$((fails + 1))
}
check() { # DESCRIPTION WANT GOT
	if [ "$3" = "$2" ]; then ok "$1"; else bad "$1: want '$2', got '$3'"; fi
}

wait_pg() { # CONTAINER
	local i
	for i in $(seq 120); do
		"$docker" exec "$1" pg_isready -q -h 127.0.0.1 2>/dev/null && return 0
		sleep 0.5
	done
	"$docker" logs "$1" >&2
	return 1
}

mkdir -p "$tmp/initdb" "$tmp/auth"
cat >"$tmp/initdb/01-schema.sql" <<'SQL'
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE items (id int PRIMARY KEY, embedding vector(3));
SQL
cat >"$tmp/initdb/02-seed.sh" <<'SH'
#!/bin/sh
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -c "INSERT INTO items VALUES (1, '[1,2,3]')"
SH
chmod 0755 "$tmp/initdb/02-seed.sh"
printf 'smoke-secret\n' >"$tmp/auth/password"
chmod 0600 "$tmp/auth/password" # root's file: the entrypoint reads it before dropping privileges
chmod -R a+rX "$tmp/initdb"
chmod 0755 "$tmp" "$tmp/auth"

# ---------------------------------------------------------------- pgvector
pg=$("$docker" run -d --label "$label" -e POSTGRES_USER=mosaic -e POSTGRES_PASSWORD_FILE=/run/auth/password \
	-e POSTGRES_DB=mosaic -v "$tmp/initdb:/docker-entrypoint-initdb.d:ro" -v "$tmp/auth:/run/auth:ro" \
	"$MOSAIC_POSTGRES_IMAGE")
wait_pg "$pg"
# A client in another container, as the gateway is: inside the server's own container
# loopback is trusted (initdb's default, as in the official images).
pg_ip=$("$docker" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$pg")
psql_tcp() {
	"$docker" run --rm --label "$label" -e PGPASSWORD="$1" "$MOSAIC_POSTGRES_IMAGE" \
		psql -h "$pg_ip" -U mosaic -d mosaic -Atc "$2"
}
check "$MOSAIC_POSTGRES_IMAGE: pgvector installed by initdb.d/*.sql" 1 \
	"$(psql_tcp smoke-secret "SELECT count(*) FROM pg_extension WHERE extname = 'vector'")"
check "initdb.d/*.sh ran: the seeded vector(3) reads back" "[1,2,3]" "$(psql_tcp smoke-secret 'SELECT embedding FROM items WHERE id = 1')"
check "vector(3) round trip and distance" "[4,5,6]|1" \
	"$(psql_tcp smoke-secret "INSERT INTO items VALUES (2, '[4,5,6]'); SELECT embedding::text || '|' || (embedding <-> '[4,5,7]') FROM items WHERE id = 2" | tail -n1)"
if psql_tcp wrong 'SELECT 1' >/dev/null 2>&1; then bad "a wrong password over TCP was accepted"; else ok "a wrong password over TCP is refused"; fi
check "postgres runs as the unprivileged user postgres" postgres "$("$docker" exec "$pg" stat -c %U /proc/1)"
check "'ready to accept connections' twice (init server, then the real one)" 2 \
	"$("$docker" logs "$pg" 2>&1 | grep -c 'database system is ready to accept connections')"

# ---------------------------------------------------------------- postgres without pgvector
plain=$("$docker" run -d --label "$label" -e POSTGRES_PASSWORD=smoke-secret "$MOSAIC_POSTGRES_NO_VECTOR_IMAGE")
wait_pg "$plain"
out=$("$docker" exec "$plain" psql -U postgres -Atc 'CREATE EXTENSION vector' 2>&1 || true)
case "$out" in
*'extension "vector" is not available'*) ok "$MOSAIC_POSTGRES_NO_VECTOR_IMAGE: CREATE EXTENSION vector is refused (not installed)" ;;
*) bad "$MOSAIC_POSTGRES_NO_VECTOR_IMAGE: CREATE EXTENSION vector said: $out" ;;
esac

# ---------------------------------------------------------------- valkey
vk=$("$docker" run -d --label "$label" "$MOSAIC_VALKEY_IMAGE" valkey-server --save "" --appendonly no)
pong=""
for _ in $(seq 40); do
	pong=$("$docker" exec "$vk" valkey-cli ping 2>/dev/null || true)
	[ "$pong" = PONG ] && break
	sleep 0.25
done
check "$MOSAIC_VALKEY_IMAGE: PING" PONG "$pong"
check "protected mode off, as the official image" no "$("$docker" exec "$vk" valkey-cli config get protected-mode | tail -n1)"
check "persistence off from the command line" "" "$("$docker" exec "$vk" valkey-cli config get save | tail -n1)"
check "valkey runs as the unprivileged user valkey" valkey "$("$docker" exec "$vk" stat -c %U /proc/1)"

# ---------------------------------------------------------------- step-ca
vol=$("$docker" volume create --label "$label" "mosaic-smoke-ca-$$")
"$docker" run --rm --label "$label" -v "$vol:/home/step" --entrypoint sh "$MOSAIC_VALKEY_IMAGE" -c \
	'mkdir -p /home/step/secrets && head -c 18 /dev/urandom | od -An -tx1 | tr -d " \n" >/home/step/secrets/password &&
	 cp /home/step/secrets/password /home/step/secrets/provisioner && chown -R 1000:1000 /home/step && chmod -R go= /home/step/secrets'
"$docker" run --rm --label "$label" -u 1000:1000 -v "$vol:/home/step" --entrypoint /usr/local/bin/step "$MOSAIC_STEP_CA_IMAGE" \
	ca init --deployment-type standalone --name "Smoke CA" --dns localhost --address :9000 --provisioner federation \
	--password-file /home/step/secrets/password --provisioner-password-file /home/step/secrets/provisioner >/dev/null 2>&1
ca=$("$docker" run -d --label "$label" -u 1000:1000 --read-only --tmpfs /tmp --cap-drop ALL \
	--security-opt no-new-privileges:true -v "$vol:/home/step" "$MOSAIC_STEP_CA_IMAGE")
health=""
for _ in $(seq 40); do
	health=$("$docker" exec "$ca" /usr/local/bin/step ca health --ca-url https://localhost:9000 --root /home/step/certs/root_ca.crt 2>/dev/null || true)
	[ "$health" = ok ] && break
	sleep 0.25
done
check "$MOSAIC_STEP_CA_IMAGE: step-ca serves a CA from its volume as uid 1000 (step ca health)" ok "$health"

# ---------------------------------------------------------------- toxiproxy, gateway
tp=$("$docker" run -d --label "$label" --read-only --cap-drop ALL "$MOSAIC_TOXIPROXY_IMAGE")
listed=no
for _ in $(seq 40); do
	"$docker" exec "$tp" /toxiproxy-cli list >/dev/null 2>&1 && listed=yes && break
	sleep 0.25
done
check "$MOSAIC_TOXIPROXY_IMAGE: the API answers toxiproxy-cli list" yes "$listed"
check "$MOSAIC_GATEWAY_IMAGE: the gateway runs" yes \
	"$("$docker" run --rm --label "$label" --read-only --cap-drop ALL "$MOSAIC_GATEWAY_IMAGE" --help >/dev/null 2>&1 && echo yes || echo no)"
check "the gateway image runs as uid 65532" 65532:65532 "$("$docker" image inspect -f '{{.Config.User}}' "$MOSAIC_GATEWAY_IMAGE")"

printf 'smoke: %s in %ss\n' "$([ "$fails" -eq 0 ] && echo "all checks passed" || echo "$fails check(s) failed")" "$(($(date +%s) - start))"
[ "$fails" -eq 0 ]
