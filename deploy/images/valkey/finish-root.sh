#!/bin/sh
# Runs inside the Valkey image's Debian root (an mmdebstrap customize hook): the data
# directory of the official images, owned by the unprivileged user Debian's package made.
set -eu
install -d -o valkey -g valkey -m 0755 /data
