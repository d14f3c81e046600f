#!/bin/sh
# Runs inside the PostgreSQL image's Debian root while deploy/images/build.sh makes it (an
# mmdebstrap customize hook), with Debian's pgvector source package and
# postgresql-server-dev-15's .deb copied into /tmp: builds pgvector the way
# tools/deps.sh does (make && make install with PG_CONFIG against the server headers)
# and stages the result in /tmp/pgvector-stage. The headers' package is installed only
# for the build (--force-depends: its clang/LLVM dependencies serve JIT bitcode, which
# this build skips with with_llvm=no) and purged again, so dpkg removes exactly its files.
set -eu
cd /tmp
dpkg --force-depends -i postgresql-server-dev-15_*.deb >/dev/null 2>&1
tar -xzf pgvector_*.orig.tar.gz
cd pgvector-*/
# OPTFLAGS= : no -march=native, the image runs on other CPUs than the one that built it.
set -- PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config OPTFLAGS= with_llvm=no
make -j"$(nproc)" "$@" >/tmp/pgvector-build.log 2>&1 || { cat /tmp/pgvector-build.log >&2; exit 1; }
make install DESTDIR=/tmp/pgvector-stage "$@" >>/tmp/pgvector-build.log 2>&1 || { cat /tmp/pgvector-build.log >&2; exit 1; }
cd /
dpkg --purge postgresql-server-dev-15 >/dev/null
test -f /tmp/pgvector-stage/usr/lib/postgresql/15/lib/vector.so
test -f /tmp/pgvector-stage/usr/share/postgresql/15/extension/vector.control
