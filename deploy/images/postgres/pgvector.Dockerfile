# PostgreSQL 15 + pgvector: the postgres image plus the files of `make install` of
# Debian's pgvector source package, which deploy/images/build.sh compiles inside the same
# Debian root against postgresql-server-dev-15 (the way tools/deps.sh builds it).
ARG BASE
FROM ${BASE}
COPY . /
