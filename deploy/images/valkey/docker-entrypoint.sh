#!/bin/sh
# Valkey entrypoint for the offline image: the command line of the official
# valkey/valkey images (`valkey-server --save "" …`, a first argument that is a flag or
# a .conf file goes to valkey-server), run as the unprivileged `valkey` user in /data.
set -eu

case "${1:-}" in -* | *.conf) set -- valkey-server "$@" ;; esac

if [ "${1:-}" = valkey-server ] && [ "$(id -u)" = 0 ]; then
	find . \! -user valkey -exec chown valkey '{}' +
	exec setpriv --reuid=valkey --regid=valkey --init-groups "$0" "$@"
fi

if [ "${1:-}" = valkey-server ]; then
	# The official images are built with protected mode off (a container's clients are
	# never on its loopback); Debian's build has it on. Without a config file (which
	# then decides) and unless the command line says otherwise, switch it off.
	case "${2:-}" in
	'' | -*)
		case " $* " in
		*" --protected-mode "*) ;;
		*) set -- "$@" --protected-mode no ;;
		esac
		;;
	esac
	# As the official images: new files private unless a umask was chosen.
	[ "$(umask)" != 0022 ] || umask 0077
fi

exec "$@"
