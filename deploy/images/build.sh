#!/usr/bin/env bash
# `make images`: builds the container images of the two-site world for an engine that has
# no registry, each once, tagged by a hash of its inputs; an image whose tag exists is
# not built again. Idempotent; prints one line per image and the time it took.
#
#   mosaic/gateway:H        the gateway, static (CGO_ENABLED=0), on scratch
#   mosaic/step-ca:H        step-ca + step from tools/step, static, on scratch
#   mosaic/postgres:15-H    PostgreSQL 15 from Debian's packages (no pgvector: SPEC M1-4)
#   mosaic/pgvector:pg15-H  the same plus pgvector, built from Debian's source package
#   mosaic/valkey:8-H       valkey-server from bookworm-backports
#   mosaic/toxiproxy:H      the link proxy (server + CLI) from tools/toxiproxy, on scratch
#
# The Debian roots are made with mmdebstrap (installed from Debian's packages when
# missing) and `docker import`ed; a small Dockerfile layer on top adds the entrypoint.
# apt runs with a private state under .cache/images/apt whose sources are generated from
# the URIs of this machine's own apt sources, so no mirror host name is written into the
# repository and the machine's package lists stay as they were. Downloaded .debs, the
# pgvector source and the root tarballs stay under .cache/images; tags are written to
# .cache/images/images.env (for `docker compose --env-file`).
#
# H covers the image's Dockerfile, scripts and binaries, and the Debian package versions
# the private lists name (pinned at build time). MOSAIC_IMAGES_REFRESH=1 refreshes those
# lists first, so newer Debian packages give new tags.
set -Eeuo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/deploy/images
cache=$root/.cache/images
docker=${DOCKER:-docker}
go=${GO:-go}
suite=bookworm # the images' Debian suite: PostgreSQL 15
mkdir -p "$cache"/{rootfs,debs,src,ctx,logs,pgvector,gobin}

now_ms() { date +%s%3N; }
since() { local ms=$(($(now_ms) - $1)); printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100)); }
start=$(now_ms)
say() { printf 'images: %s\n' "$*"; }
die() {
	printf 'images: error: %s\n' "$*" >&2
	exit 1
}
# run LOG CMD...: CMD's output goes to LOG, and to stderr when it fails.
run() {
	local log=$1
	shift
	"$@" >"$log" 2>&1 || {
		tail -n 40 "$log" >&2
		if grep -q "Version '.*' for '.*' was not found" "$log"; then
			die "$1 failed: the mirror has moved past the versions the private lists name; run MOSAIC_IMAGES_REFRESH=1 make images (whole log: $log)"
		fi
		die "$1 failed (whole log: $log)"
	}
}
trap 'die "line $LINENO: $BASH_COMMAND failed"' ERR
hash_files() { cat "$@" | sha256sum | cut -c1-12; }
hash_text() { printf '%s' "$1" | sha256sum | cut -c1-12; }
have_image() { "$docker" image inspect "$1" >/dev/null 2>&1; }

# One builder at a time: worktrees share .cache.
if command -v flock >/dev/null; then
	exec 9>"$cache/.lock"
	flock -w 1800 9 || die "another make images holds $cache/.lock"
fi

"$docker" info >/dev/null 2>&1 || die "no Docker engine answers ('$docker info' fails): start the daemon or set DOCKER_HOST"
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)

# ---------------------------------------------------------------- apt, privately
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")

# machine_uri SUITE: the first URI of this machine's own apt sources that serves SUITE.
machine_uri() {
	local want=$1 f
	{
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			awk '
				function flush() { if (deb && uri != "") print uri, suites; uri = ""; suites = ""; deb = 0 }
				/^[[:space:]]*$/ { flush(); next }
				/^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
				/^URIs:/ { uri = $2 }
				/^Suites:/ { $1 = ""; suites = $0 }
				END { flush() }' "$f"
		done
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -f "$f" ] || continue
			sed -E 's/\[[^]]*\][[:space:]]*//' "$f" | awk '$1 == "deb" { print $2, $3 }'
		done
	} | awk -v want="$want" '!found { for (i = 2; i <= NF; i++) if ($i == want) { print $1; found = 1 } }'
}

# apt_opts DIR: a private apt state (lists, sources, preferences, cache) in DIR.
apt_opts() {
	echo -o Dir::State::Lists="$1/lists" -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$1/sources.list.d" \
		-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts="$1/preferences.d" -o Dir::Cache="$1/cache" \
		-o APT::Sandbox::User=root -o DPkg::Lock::Timeout=300
}
# apt_update DIR: refresh DIR's lists when they are missing, the sources changed or a
# refresh is asked for.
apt_update() {
	local dir=$1 sum
	sum=$({ cat "$dir"/sources.list.d/* "$dir"/preferences.d/* 2>/dev/null || true; } | sha256sum | cut -c1-16)
	if [ -n "${MOSAIC_IMAGES_REFRESH:-}" ] || [ ! -f "$dir/lists/.stamp" ] || [ "$(cat "$dir/lists/.stamp")" != "$sum" ]; then
		say "refreshing private apt lists in ${dir#"$root"/} (the machine's own lists stay untouched)"
		# shellcheck disable=SC2046
		apt-get -q $(apt_opts "$dir") update >"$cache/logs/apt-update.log" 2>&1 || {
			tail -n 20 "$cache/logs/apt-update.log" >&2
			die "apt-get update failed: check the network and /etc/apt/sources.list.d"
		}
		echo "$sum" >"$dir/lists/.stamp"
	fi
}

# The images' suites, from this machine's URIs: the main archive serving this machine's
# codename, and its security archive when it has one.
img_apt=$cache/apt
mirror_uri=$(machine_uri "$codename")
[ -n "$mirror_uri" ] || die "could not read a Debian mirror for '$codename' from /etc/apt/sources.list(.d): configure apt first"
security_uri=$(machine_uri "$codename-security")
mkdir -p "$img_apt"/{lists/partial,cache/archives/partial,sources.list.d,preferences.d}
sources=$img_apt/sources.list.d/images.sources
{
	printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
		"$mirror_uri" "$suite" "$suite" "$suite"
	if [ -n "$security_uri" ]; then
		printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
			"$security_uri" "$suite"
	fi
} >"$sources.new"
# pgvector's source package comes from the next suite (bookworm has none).
printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
	"$mirror_uri" >"$img_apt/sources.list.d/pgvector-src.sources.new"
for f in "$sources" "$img_apt/sources.list.d/pgvector-src.sources"; do
	cmp -s "$f.new" "$f" 2>/dev/null && rm "$f.new" || mv "$f.new" "$f"
done
cmp -s "$here/valkey/valkey-backports.pref" "$img_apt/preferences.d/valkey-backports.pref" ||
	cp "$here/valkey/valkey-backports.pref" "$img_apt/preferences.d/"
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || die "no /usr/share/keyrings/debian-archive-keyring.gpg: install debian-archive-keyring"
apt_update "$img_apt"

# candidate PKG: the version apt would install from the images' suites.
candidate() {
	# shellcheck disable=SC2046
	apt-cache $(apt_opts "$img_apt") policy "$1" 2>/dev/null | awk '/Candidate:/ && !v { v = $2 } END { if (v != "(none)") print v }'
}
# source_version PKG: the newest version of a source package in the private lists.
source_version() {
	# shellcheck disable=SC2046
	apt-cache $(apt_opts "$img_apt") showsrc "$1" 2>/dev/null | awk '/^Version:/ { print $2 }' | sort -V | tail -n1
}

# The versions the images pin, resolved once per refresh of the private lists.
versions=$img_apt/lists/.versions
if [ ! -f "$versions" ] || [ "$versions" -ot "$img_apt/lists/.stamp" ]; then
	{
		echo "pg_version=$(candidate postgresql-15)"
		echo "pgvector_version=$(source_version pgvector)"
		echo "valkey_version=$(candidate valkey-server)"
	} >"$versions"
fi
# shellcheck disable=SC1090
. "$versions"

# ensure_mmdebstrap: install Debian's mmdebstrap when missing, from this machine's own
# sources through a private state (as tools/deps.sh installs its packages).
ensure_mmdebstrap() {
	command -v mmdebstrap >/dev/null && return 0
	[ "$(id -u)" -eq 0 ] || die "mmdebstrap is missing and this is not root: apt-get install mmdebstrap, then run make images as root"
	local host_apt=$cache/apt-host
	rm -rf "$host_apt/sources.list.d"
	mkdir -p "$host_apt"/{lists/partial,cache/archives/partial,sources.list.d,preferences.d}
	cp /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list "$host_apt/sources.list.d/" 2>/dev/null || true
	[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$host_apt/sources.list.d/machine.list"
	apt_update "$host_apt"
	say "installing mmdebstrap from Debian's packages"
	# shellcheck disable=SC2046
	run "$cache/logs/apt-install.log" env DEBIAN_FRONTEND=noninteractive \
		apt-get -q $(apt_opts "$host_apt") install -y --no-install-recommends mmdebstrap
}

# mmdebstrap's common options: a minimal root without man pages, translations or docs
# (copyrights kept), with the .debs cache synced in and out.
mm_common=(
	--mode=root --format=tar --variant=minbase --skip=essential/unlink
	--aptopt='APT::Install-Recommends "false"'
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
	--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias'
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
	--setup-hook='mkdir -p "$1"/var/cache/apt/archives'
	--setup-hook="sync-in $cache/debs /var/cache/apt/archives/"
)
mm_save_debs=(--customize-hook="sync-out /var/cache/apt/archives $cache/debs")

# root_image NAME HASH RECIPE ARGS...: sets root_tag to the imported Debian root
# mosaic/NAME-root:HASH, from the cached tarball or made by RECIPE TARBALL ARGS....
root_image() {
	local name=$1 h=$2 recipe=$3
	shift 3
	local tar=$cache/rootfs/$name-$h.tar t
	root_tag=mosaic/$name-root:$h
	have_image "$root_tag" && return 0
	if [ ! -f "$tar" ]; then
		ensure_mmdebstrap
		t=$(now_ms)
		say "$name: making a Debian $suite root with mmdebstrap (first time: a minute or two)"
		"$recipe" "$tar.partial" "$@"
		mv "$tar.partial" "$tar"
		say "$name: root $(du -h "$tar" | cut -f1) in $(since "$t")"
		# Keep this root and the one before it (another worktree may still build that one).
		ls -t "$cache/rootfs/$name-"*.tar | tail -n +3 | while read -r old; do rm -f "$old" "${old%.tar}.tar.packages"; done
	fi
	run "$cache/logs/$name-import.log" "$docker" import \
		--change "LABEL mosaic.image=$name-root" --change "LABEL mosaic.inputs=$h" "$tar" "$root_tag"
}

# manifest_hook OUT: an mmdebstrap hook writing the root's package list beside OUT.
manifest_hook() {
	printf '%s' "--customize-hook=chroot \"\$1\" dpkg-query -W -f='\${Package} \${Version}\\n' >'${1%.partial}.packages'"
}

# build_image NAME TAG DOCKERFILE CONTEXT [docker build args...]
build_image() {
	local name=$1 tag=$2 dockerfile=$3 ctx=$4 t
	shift 4
	if have_image "$tag"; then
		say "$(printf '%-9s %-36s cached' "$name" "$tag")"
		return 0
	fi
	t=$(now_ms)
	run "$cache/logs/$name-build.log" "$docker" build --label mosaic.image="$name" --label mosaic.inputs="${tag##*:}" \
		-f "$dockerfile" -t "$tag" "$@" "$ctx"
	say "$(printf '%-9s %-36s built in %s (%s)' "$name" "$tag" "$(since "$t")" \
		"$("$docker" image inspect -f '{{.Size}}' "$tag" | awk '{ printf "%.0f MB", $1 / 1e6 }')")"
}

static_binary() { # PATH: fail unless PATH is a statically linked executable
	command -v file >/dev/null || return 0
	local what
	what=$(file -L "$1")
	case "$what" in *"statically linked"*) ;; *) die "$1 is not statically linked: $what" ;; esac
}

scratch_context() { # DIR PASSWD-DIR: the parts of a scratch image's context besides its binaries
	local ctx=$1
	rm -rf "$ctx"
	mkdir -p "$ctx/tmp" "$ctx/home"
	chmod 1777 "$ctx/tmp"
	cp "$2/passwd" "$2/group" "$ctx/"
	local bundle=/etc/ssl/certs/ca-certificates.crt
	[ -f "$bundle" ] || die "no $bundle: install ca-certificates"
	cp "$bundle" "$ctx/ca-certificates.crt"
}

# ---------------------------------------------------------------- gateway
ctx=$cache/ctx/gateway
scratch_context "$ctx" "$here/gateway"
# Binaries go to .cache/images/gobin first: go build skips the link when they are current.
gobin=$cache/gobin
# first_build NAME BINARY...: say so when a binary is new (a cold Go cache takes minutes).
first_build() {
	local name=$1 b
	shift
	for b in "$@"; do
		[ -x "$gobin/$b" ] || { say "$name: go build $* (CGO_ENABLED=0; minutes on a cold Go build cache)"; return 0; }
	done
}
first_build gateway gateway
(cd "$root" && run "$cache/logs/gateway-go.log" env CGO_ENABLED=0 "$go" build -trimpath -buildvcs=false -ldflags='-s -w' -o "$gobin/gateway" ./gateway)
static_binary "$gobin/gateway"
cp "$gobin/gateway" "$ctx/"
gateway_tag=mosaic/gateway:$(hash_files "$here/gateway/Dockerfile.local" "$ctx/passwd" "$ctx/group" "$ctx/ca-certificates.crt" "$ctx/gateway")
build_image gateway "$gateway_tag" "$here/gateway/Dockerfile.local" "$ctx"

# ---------------------------------------------------------------- step-ca + step
ctx=$cache/ctx/step-ca
scratch_context "$ctx" "$here/step-ca"
# Without -trimpath, so `make deps`'s compiled packages are reused: only the link is new.
step_build() { # MODULE PACKAGE
	local v
	v=$("$go" list -m -f '{{.Version}}' "$1")
	run "$cache/logs/step-go.log" env CGO_ENABLED=0 "$go" build -buildvcs=false -ldflags="-s -w -X main.Version=${v#v}" -o "$gobin/" "$2"
}
first_build step-ca step-ca step
(cd "$root/tools/step" && step_build github.com/smallstep/certificates github.com/smallstep/certificates/cmd/step-ca &&
	step_build github.com/smallstep/cli github.com/smallstep/cli/cmd/step)
static_binary "$gobin/step-ca"
static_binary "$gobin/step"
cp "$gobin/step-ca" "$gobin/step" "$ctx/"
step_tag=mosaic/step-ca:$(hash_files "$here/step-ca/Dockerfile.local" "$ctx/passwd" "$ctx/group" "$ctx/ca-certificates.crt" "$ctx/step-ca" "$ctx/step")
build_image step-ca "$step_tag" "$here/step-ca/Dockerfile.local" "$ctx"

# ---------------------------------------------------------------- Toxiproxy
ctx=$cache/ctx/toxiproxy
scratch_context "$ctx" "$here/toxiproxy"
first_build toxiproxy toxiproxy toxiproxy-cli
tp_version=$(cd "$root/tools/toxiproxy" && "$go" list -m -f '{{.Version}}' github.com/Shopify/toxiproxy/v2)
(cd "$root/tools/toxiproxy" && run "$cache/logs/toxiproxy-go.log" env CGO_ENABLED=0 "$go" build -trimpath -buildvcs=false \
	-ldflags="-s -w -X github.com/Shopify/toxiproxy/v2.Version=$tp_version" -o "$gobin/toxiproxy" github.com/Shopify/toxiproxy/v2/cmd/server &&
	run "$cache/logs/toxiproxy-cli-go.log" env CGO_ENABLED=0 "$go" build -trimpath -buildvcs=false -ldflags='-s -w' \
		-o "$gobin/toxiproxy-cli" github.com/Shopify/toxiproxy/v2/cmd/cli)
static_binary "$gobin/toxiproxy"
static_binary "$gobin/toxiproxy-cli"
cp "$gobin/toxiproxy" "$gobin/toxiproxy-cli" "$ctx/"
toxiproxy_tag=mosaic/toxiproxy:$(hash_files "$here/toxiproxy/Dockerfile.local" "$ctx/passwd" "$ctx/group" "$ctx/ca-certificates.crt" "$ctx/toxiproxy" "$ctx/toxiproxy-cli")
build_image toxiproxy "$toxiproxy_tag" "$here/toxiproxy/Dockerfile.local" "$ctx"

# ---------------------------------------------------------------- PostgreSQL 15 (+ pgvector)
[ -n "$pg_version" ] || die "postgresql-15 not found in the private lists (${sources#"$root"/})"
[ -n "$pgvector_version" ] || die "no pgvector source package in the private lists: is a deb-src entry for trixie reachable?"

# recipe_postgres TARBALL PG-VERSION: postgresql-15 with pgvector compiled and staged in
# the same root (then the compilers purged): the staged files go to $pgvector_stage.
recipe_postgres() {
	local out=$1 pgv=$2 dev src
	dev=$(ls "$cache/debs/postgresql-server-dev-15_${pgv//:/%3a}_$arch.deb" 2>/dev/null || true)
	if [ -z "$dev" ]; then
		# shellcheck disable=SC2046
		(cd "$cache/debs" && run "$cache/logs/apt-download.log" apt-get -q $(apt_opts "$img_apt") download "postgresql-server-dev-15=$pgv")
		dev=$cache/debs/postgresql-server-dev-15_${pgv//:/%3a}_$arch.deb
	fi
	src=$(ls "$cache/src/pgvector_${pgvector_version%-*}.orig.tar.gz" 2>/dev/null || true)
	if [ -z "$src" ]; then
		# shellcheck disable=SC2046
		(cd "$cache/src" && run "$cache/logs/apt-source.log" apt-get -q $(apt_opts "$img_apt") source --download-only "pgvector=$pgvector_version")
		src=$cache/src/pgvector_${pgvector_version%-*}.orig.tar.gz
	fi
	rm -rf "$pgvector_stage.partial" && mkdir -p "$pgvector_stage.partial"
	run "$cache/logs/postgres-mmdebstrap.log" mmdebstrap "${mm_common[@]}" \
		--include="postgresql-15=$pgv,gcc,make,libc6-dev" \
		--skip=cleanup/run \
		--customize-hook="copy-in $dev $src $here/postgres/build-pgvector.sh $here/postgres/finish-root.sh /tmp" \
		--customize-hook='chroot "$1" sh /tmp/build-pgvector.sh' \
		--customize-hook="sync-out /tmp/pgvector-stage $pgvector_stage.partial" \
		--customize-hook='chroot "$1" sh /tmp/finish-root.sh' \
		"$(manifest_hook "$out")" \
		"${mm_save_debs[@]}" \
		"$suite" "$out" "$sources"
	rm -rf "$pgvector_stage" && mv "$pgvector_stage.partial" "$pgvector_stage"
}

pg_root_hash=$(hash_text "$suite $pg_version pgvector=$pgvector_version $(declare -f recipe_postgres) ${mm_common[*]//$cache/CACHE}
$(cat "$here/postgres/build-pgvector.sh" "$here/postgres/finish-root.sh")")
pgvector_stage=$cache/pgvector/$pg_root_hash
root_image postgres "$pg_root_hash" recipe_postgres "$pg_version"
if [ ! -f "$pgvector_stage/usr/lib/postgresql/15/lib/vector.so" ]; then
	# The root is here but its staged pgvector is not (.cache cleaned): make both again.
	"$docker" rmi "$root_tag" >/dev/null
	rm -f "$cache/rootfs/postgres-$pg_root_hash.tar"
	root_image postgres "$pg_root_hash" recipe_postgres "$pg_version"
fi
pg_root=$root_tag
postgres_tag=mosaic/postgres:15-$(hash_text "$pg_root $(cat "$here/postgres/Dockerfile" "$here/postgres/docker-entrypoint.sh")")
build_image postgres "$postgres_tag" "$here/postgres/Dockerfile" "$here/postgres" --build-arg ROOT="$pg_root"
pgvector_tag=mosaic/pgvector:pg15-$(hash_text "$postgres_tag $(cat "$here/postgres/pgvector.Dockerfile") $(cd "$pgvector_stage" && find . -type f | sort | xargs sha256sum)")
build_image pgvector "$pgvector_tag" "$here/postgres/pgvector.Dockerfile" "$pgvector_stage" --build-arg BASE="$postgres_tag"

# ---------------------------------------------------------------- Valkey 8
[ -n "$valkey_version" ] || die "valkey-server not found in the private lists (bookworm-backports)"

recipe_valkey() { # TARBALL VALKEY-VERSION
	local out=$1 v=$2
	run "$cache/logs/valkey-mmdebstrap.log" mmdebstrap "${mm_common[@]}" \
		--setup-hook='mkdir -p "$1"/etc/apt/preferences.d' \
		--setup-hook="copy-in $here/valkey/valkey-backports.pref /etc/apt/preferences.d" \
		--include="valkey-server=$v" \
		--customize-hook="copy-in $here/valkey/finish-root.sh /tmp" \
		--customize-hook='chroot "$1" sh /tmp/finish-root.sh' \
		"$(manifest_hook "$out")" \
		"${mm_save_debs[@]}" \
		"$suite" "$out" "$sources"
}

valkey_root_hash=$(hash_text "$suite $valkey_version $(declare -f recipe_valkey) ${mm_common[*]//$cache/CACHE}
$(cat "$here/valkey/valkey-backports.pref" "$here/valkey/finish-root.sh")")
root_image valkey "$valkey_root_hash" recipe_valkey "$valkey_version"
valkey_root=$root_tag
valkey_tag=mosaic/valkey:8-$(hash_text "$valkey_root $(cat "$here/valkey/Dockerfile" "$here/valkey/docker-entrypoint.sh")")
build_image valkey "$valkey_tag" "$here/valkey/Dockerfile" "$here/valkey" --build-arg ROOT="$valkey_root"

# ---------------------------------------------------------------- the tags, for compose
cat >"$cache/images.env.new" <<-ENV
	# Local images for docker-compose.two-gateways.yml (written by make images):
	#   docker compose -f docker-compose.two-gateways.yml --env-file .cache/images/images.env …
	MOSAIC_GATEWAY_IMAGE=$gateway_tag
	MOSAIC_STEP_CA_IMAGE=$step_tag
	MOSAIC_POSTGRES_IMAGE=$pgvector_tag
	MOSAIC_POSTGRES_NO_VECTOR_IMAGE=$postgres_tag
	MOSAIC_VALKEY_IMAGE=$valkey_tag
	MOSAIC_TOXIPROXY_IMAGE=$toxiproxy_tag
ENV
mv "$cache/images.env.new" "$cache/images.env"
say "tags in ${cache#"$root"/}/images.env; done in $(since "$start")"
