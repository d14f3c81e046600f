#!/usr/bin/env bash
# The two-site world as containers, end to end (make compose-check): `up --wait` on
# fresh volumes (timed), home's demo user lists work's rows through home's API
# (source=federated:work), a second `up --wait` on the same volumes re-runs every
# one-shot without re-initialising anything, and `down -v` leaves nothing behind.
#
#   COMPOSE       the Compose v2 binary (default .cache/bin/docker-compose, `make compose`)
#   ENV_FILE      image tags (default .cache/images/images.env, `make images`)
#   PROJECT       the compose project name (default mosaic-check)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
compose=${COMPOSE:-$root/.cache/bin/docker-compose}
env_file=${ENV_FILE:-$root/.cache/images/images.env}
project=${PROJECT:-mosaic-check}
dc() { "$compose" -p "$project" -f "$root/docker-compose.two-gateways.yml" --env-file "$env_file" "$@"; }
say() { printf 'compose-check: %s\n' "$*"; }
fail() { say "FAILED: $*"; dc ps -a >&2 || true; exit 1; }
cleanup() { dc down -v --remove-orphans >/dev/null 2>&1 || true; }
trap cleanup EXIT

cleanup # a run cut short before
t0=$(date +%s.%N)
dc up -d --wait --wait-timeout 300 >/dev/null 2>&1 || fail "up --wait (fresh volumes)"
say "up on fresh volumes, every service healthy and every one-shot done: $(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f') s"

# The demo's throw-away token, printed once by home's seed (as `harness up` prints it).
token=$(dc logs --no-log-prefix home-seed | awk '$1 == "ada@home.example" { print $3 }')
[[ $token == mos_* ]] || fail "no API token for ada@home.example in home-seed's output"
port=$(dc port home-gateway 8080 | cut -d: -f2)
list() {
	curl -sS -o /tmp/compose-check.$$.json -w '%{http_code}' -H "Authorization: Bearer $token" \
		"http://127.0.0.1:$port/api/v1/tasks?source=federated:work&limit=5"
}
check_list() {
	local code
	code=$(list) || fail "home's API did not answer"
	[[ $code == 200 ]] || fail "home's API answered $code to source=federated:work"
	python3 - /tmp/compose-check.$$.json <<'PY' || fail "work's rows did not come back"
import json, sys
d = json.load(open(sys.argv[1]))
src = d.get("sources", [{}])[0]
assert d["items"] and src.get("status") == "ok" and not d["_partial"], (len(d["items"]), src)
print(f"compose-check: home lists {len(d['items'])} of work's tasks (source {src.get('name')}: {src.get('status')})")
PY
	rm -f /tmp/compose-check.$$.json
}
check_list

t0=$(date +%s.%N)
dc up -d --wait --wait-timeout 300 >/dev/null 2>&1 || fail "up --wait (second run, same volumes)"
say "second up on the same volumes: $(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f') s"
for s in work-secrets home-secrets; do
	dc logs --no-log-prefix "$s" | tail -5 | grep -q created && fail "$s re-created a secret"
done
for s in work-ca-init home-ca-init; do
	dc logs --no-log-prefix "$s" | grep -q 'kept the CA already' || fail "$s did not keep its CA"
done
dc logs --no-log-prefix work-enroll-offer | grep -q 'already enrolled' || fail "work-enroll-offer offered again"
dc logs --no-log-prefix home-enroll-accept | grep -q 'nothing to do' || fail "home-enroll-accept enrolled again"
check_list

dc down -v --remove-orphans >/dev/null 2>&1 || fail "down -v"
label="label=com.docker.compose.project=$project"
left="$(docker ps -aq --filter "$label")$(docker volume ls -q --filter "$label")$(docker network ls -q --filter "$label")"
[[ -z $left ]] || fail "down -v left containers, volumes or networks of $project"
trap - EXIT
say "down -v removed every container, volume and network: ok"
