#!/usr/bin/env bash
# Dependency bootstrap (`make deps`): installs what the harness and the tests need and
# is missing, and nothing else. Idempotent; quick when everything is present.
#
#   PostgreSQL server      Debian's package (postgresql)
#   pgvector               postgresql-NN-pgvector where the distribution has one, else
#                          the distribution's source package from the next suite, built
#                          against postgresql-server-dev-NN
#   valkey-server          bookworm-backports on bookworm; redis-server as fallback
#   step-ca, step          built from tools/step (CGO_ENABLED=0) into .cache/bin
#   golangci-lint          built from tools/lint into .cache/bin
#   toxiproxy-server, -cli built from tools/toxiproxy into .cache/bin (the harness's links)
#   container images       where a Docker engine answers: deploy/images/build.sh (make
#                          images), each built once; MOSAIC_NO_IMAGES=1 skips them
#
# apt runs with a private state directory (.cache/apt) whose sources are copies of this
# machine's own apt sources plus the extra suites, so the machine's package lists stay as
# they were and no mirror host name is written anywhere in the repository.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache"
bin="$cache/bin"
apt_dir="$cache/apt"
mkdir -p "$bin"

say() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: error: %s\n' "$*" >&2; exit 1; }

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || die "not root and no sudo: install the missing packages as root, or run make deps as root"
	sudo_cmd=(sudo)
fi

# ---------------------------------------------------------------- Go
command -v go >/dev/null || die "Go is not installed: install Go 1.26 or newer (https://go.dev/doc/install) and put it on PATH"

# ---------------------------------------------------------------- apt, privately
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
apt_ready=""

# machine_uri prints the first URI of this machine's apt sources that serves $codename.
machine_uri() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v suite="$codename" '
			/^[[:space:]]*$/ { if (uri != "" && ok) { print uri; exit } uri = ""; ok = 0; next }
			/^URIs:/ { uri = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
			END { if (uri != "" && ok) print uri }' "$f" | head -n1
	done
	if [ -f /etc/apt/sources.list ]; then
		# deb [options] URI suite components: skip the bracketed options if present.
		sed -E 's/\[[^]]*\][[:space:]]*//' /etc/apt/sources.list |
			awk -v suite="$codename" '$1 == "deb" && $3 == suite { print $2; exit }'
	fi
}

apt_opts() {
	echo -o Dir::State::Lists="$apt_dir/lists" -o Dir::Etc::SourceParts="$apt_dir/sources.list.d" \
		-o Dir::Cache="$apt_dir/cache" -o APT::Sandbox::User=root -o DPkg::Lock::Timeout=300
}
# env after sudo: sudo would drop DEBIAN_FRONTEND.
apt_private() { "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q $(apt_opts) "$@"; }

# configured SUITE: does the machine already list this suite (then we add nothing, or
# apt would see the same suite twice, perhaps with conflicting Signed-By values)?
configured() {
	grep -rqsE "(^|[[:space:]])$1([[:space:]]|\$)" /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
}

# apt_prepare builds the private sources (the machine's own, plus backports and the next
# suite's sources on bookworm) and refreshes the private lists once per run.
apt_prepare() {
	[ -n "$apt_ready" ] && return 0
	command -v apt-get >/dev/null || die "no apt-get: install PostgreSQL ${pg_major:-} with pgvector, valkey-server (or redis-server) by hand"
	local uri
	uri=$(machine_uri | head -n1)
	[ -n "$uri" ] || die "could not read a Debian mirror for '$codename' from /etc/apt/sources.list(.d): configure apt first"
	rm -rf "$apt_dir/sources.list.d"
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources.list.d"
	cp /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list "$apt_dir/sources.list.d/" 2>/dev/null || true
	if [ "$codename" = bookworm ]; then
		if ! configured bookworm-backports; then
			cat >"$apt_dir/sources.list.d/mosaic-backports.sources" <<-SRC
			Types: deb
			URIs: $uri
			Suites: bookworm-backports
			Components: main
			Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
			SRC
		fi
		cat >"$apt_dir/sources.list.d/mosaic-src.sources" <<-SRC
		Types: deb-src
		URIs: $uri
		Suites: trixie
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
		SRC
	fi
	say "refreshing private apt lists (the machine's own lists stay untouched)"
	apt_private update -qq >/dev/null || die "apt-get update failed: check the network and /etc/apt/sources.list.d"
	apt_ready=1
}

apt_install() {
	apt_prepare
	say "installing $*"
	apt_private install -y -qq --no-install-recommends "$@" >/dev/null ||
		die "could not install $*: try 'apt-get install $*' by hand and read its error"
}

apt_has() { apt_prepare; apt-cache $(apt_opts) show "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- PostgreSQL
pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n | tail -n1; }
if [ -z "$(pg_bindir)" ] || [ ! -x "$(pg_bindir)/postgres" ]; then
	apt_install postgresql
fi
pg_bin=$(pg_bindir)
[ -x "$pg_bin/postgres" ] || die "PostgreSQL server not found under /usr/lib/postgresql after install"
pg_major=$(basename "$(dirname "$pg_bin")")

# ---------------------------------------------------------------- pgvector
pgvector_present() {
	[ -f "/usr/share/postgresql/$pg_major/extension/vector.control" ] && [ -f "/usr/lib/postgresql/$pg_major/lib/vector.so" ]
}
if ! pgvector_present; then
	if apt_has "postgresql-$pg_major-pgvector"; then
		apt_install "postgresql-$pg_major-pgvector"
	else
		say "no pgvector package for PostgreSQL $pg_major here: building the distribution's source package"
		missing=()
		dpkg -s "postgresql-server-dev-$pg_major" >/dev/null 2>&1 || missing+=("postgresql-server-dev-$pg_major")
		command -v gcc >/dev/null || missing+=(gcc)
		command -v make >/dev/null || missing+=(make)
		[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
		src="$cache/pgvector-src"
		rm -rf "$src" && mkdir -p "$src"
		(cd "$src" && apt_private source --download-only pgvector >/dev/null) ||
			die "could not download pgvector's source package: is a deb-src entry for a newer suite reachable?"
		tar -xzf "$src"/pgvector_*.orig.tar.gz -C "$src"
		dir=$(ls -d "$src"/pgvector-*/ | head -n1)
		make -s -C "$dir" -j"$(nproc)" PG_CONFIG="$pg_bin/pg_config" >/dev/null 2>"$src/build.log" ||
			die "pgvector build failed: see $src/build.log"
		"${sudo_cmd[@]}" make -s -C "$dir" install PG_CONFIG="$pg_bin/pg_config" >/dev/null ||
			die "pgvector install failed"
	fi
	pgvector_present || die "pgvector still missing after install"
	say "pgvector installed for PostgreSQL $pg_major"
fi

# ---------------------------------------------------------------- Valkey
if ! command -v valkey-server >/dev/null && ! command -v redis-server >/dev/null; then
	if [ "$codename" = bookworm ] && apt_has valkey-server; then
		apt_install -t bookworm-backports valkey-server
	elif apt_has valkey-server; then
		apt_install valkey-server
	else
		apt_install redis-server
	fi
fi

# ---------------------------------------------------------------- Go tools
# A stamp holds the hash of the tools module's go.mod and go.sum: a pin change rebuilds.
build_tools() { # module-dir stamp-name packages...
	local dir=$1 name=$2
	shift 2
	local want have=""
	want=$(cat "$root/$dir/go.mod" "$root/$dir/go.sum" | sha256sum | cut -c1-16)
	[ -f "$bin/.$name.stamp" ] && have=$(cat "$bin/.$name.stamp")
	local all=1 p
	for p in "$@"; do [ -x "$bin/$(basename "$p")" ] || all=""; done
	if [ "$want" != "$have" ] || [ -z "$all" ]; then
		say "building $name from $dir (first time: a few minutes)"
		(cd "$root/$dir" && CGO_ENABLED=0 go build -o "$bin/" "$@") || die "building $name failed"
		echo "$want" >"$bin/.$name.stamp"
	fi
}
# build_tool_as builds one tool package under a name of our choosing: go build names a
# binary after its package's last element, and toxiproxy's are "server" and "cli".
build_tool_as() { # module-dir binary-name package
	local dir=$1 name=$2 pkg=$3
	local want have=""
	want=$(cat "$root/$dir/go.mod" "$root/$dir/go.sum" | sha256sum | cut -c1-16)
	[ -f "$bin/.$name.stamp" ] && have=$(cat "$bin/.$name.stamp")
	if [ "$want" != "$have" ] || [ ! -x "$bin/$name" ]; then
		say "building $name from $dir"
		(cd "$root/$dir" && CGO_ENABLED=0 go build -trimpath -o "$bin/$name" "$pkg") || die "building $name failed"
		echo "$want" >"$bin/.$name.stamp"
	fi
}
build_tools tools/step step github.com/smallstep/certificates/cmd/step-ca github.com/smallstep/cli/cmd/step
build_tools tools/lint golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint
build_tool_as tools/toxiproxy toxiproxy-server github.com/Shopify/toxiproxy/v2/cmd/server
build_tool_as tools/toxiproxy toxiproxy-cli github.com/Shopify/toxiproxy/v2/cmd/cli

# ---------------------------------------------------------------- container images
# Where a Docker engine answers, the images of the docker backend and the compose world
# (deploy/images/build.sh: each built once, tagged by a hash of its inputs, so a
# re-run costs seconds). MOSAIC_NO_IMAGES=1 skips them.
images="no Docker engine answers: no images"
if [ -n "${MOSAIC_NO_IMAGES:-}" ]; then
	images="images skipped (MOSAIC_NO_IMAGES)"
elif command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; then
	bash "$root/deploy/images/build.sh" || die "building the container images failed (the lines above say which); MOSAIC_NO_IMAGES=1 make deps skips them"
	images="the container images"
fi

say "ready: PostgreSQL $pg_major + pgvector, $(command -v valkey-server || command -v redis-server), step-ca, step, golangci-lint, toxiproxy-server, $images"
