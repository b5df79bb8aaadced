#!/usr/bin/env bash
# Checks the systemd units as shipped (make units-check):
#  1. systemd-analyze verify, in a root of their own that holds what they start, with
#     their drop-ins; any complaint fails.
#  2. The timer's metrics reach node_exporter on a stock Debian/Ubuntu host: the file the
#     pass writes (mode 0600 under UMask=0077, owned by a dynamic uid) is published by the
#     unit's own ExecStopPost commands into the textfile directory of Debian's
#     prometheus-node-exporter (installed from Debian's packages when missing, with its
#     directory's ownership and mode as the package ships them), and node_exporter,
#     running as its own user, serves the metrics. The commands run as written, with
#     their paths moved under a scratch directory.
# Installs systemd and prometheus-node-exporter from Debian's packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
units=manifests/systemd
bin=${1:-bin/reconcile}

need() { # need COMMAND PACKAGE
	command -v "$1" >/dev/null && return
	echo "installing $2"
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2") >/dev/null
}
need systemd-analyze systemd
need prometheus-node-exporter prometheus-node-exporter

scratch=$(mktemp -d)
exporter=
cleanup() {
	[ -n "$exporter" ] && kill "$exporter" 2>/dev/null
	rm -rf "$scratch"
}
trap cleanup EXIT

# 1. systemd-analyze verify.
root=$scratch/root
mkdir -p "$root/usr/local/bin" "$root/usr/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd"
cp "$bin" "$root/usr/local/bin/"
cp "$(command -v install)" "$(command -v mv)" "$root/usr/bin/"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp "$units"/*.service "$units"/*.timer "$root/etc/systemd/system/"
cp -r "$units"/*.service.d "$root/etc/systemd/system/" # drop-ins (the Docker host's)
out=$(cd "$root/etc/systemd/system" && systemd-analyze verify --root="$root" --man=no ./*.service ./*.timer 2>&1) || true
if [ -n "$out" ]; then
	echo "$out"
	exit 1
fi
echo "systemd-analyze verify: units OK"

# 2. The metrics file, from the pass to node_exporter.
unit=$units/reconcile.service
textfile=/var/lib/prometheus/node-exporter # Debian's default --collector.textfile.directory
metrics=$(sed -n 's/^ExecStart=.*--metrics-file \([^ ]*\).*/\1/p' "$unit")
state=$(sed -n 's/^StateDirectory=//p' "$unit")
case "$metrics" in
"/var/lib/$state/"*) ;;
*) echo "$unit: --metrics-file $metrics is not in its StateDirectory /var/lib/$state" && exit 1 ;;
esac
if ! grep -q '^DynamicUser=yes' "$unit" || ! grep -q '^UMask=0077' "$unit"; then
	echo "$unit: the check assumes DynamicUser=yes and UMask=0077"
	exit 1
fi

# The host as the package leaves it: the textfile directory is root's, 0755.
chmod 0755 "$scratch"
mkdir -p "$scratch$textfile" "$scratch/var/lib/$state"
pkgdir=$(stat -c '%U:%G %a' "$textfile")
chown "${pkgdir% *}" "$scratch$textfile"
chmod "${pkgdir#* }" "$scratch$textfile"
[ "${pkgdir#* }" = 755 ] || echo "note: $textfile is ${pkgdir#* } here"
# What the pass leaves: its own file, unreadable to others.
printf '# TYPE reconcile_last_pass_timestamp_seconds gauge\nreconcile_last_pass_timestamp_seconds 1.764e+09\n' >"$scratch$metrics"
chown 61234:61234 "$scratch$metrics"
chmod 0600 "$scratch$metrics"
# The unit's ExecStopPost commands, as root, paths moved under the scratch directory.
n=0
while IFS= read -r cmd; do
	case "$cmd" in
	+-* | -+*) cmd=${cmd:2} ;;
	*) echo "$unit: ExecStopPost=$cmd must run as root (+) and may fail (-)" && exit 1 ;;
	esac
	read -r -a argv <<<"${cmd//\/var\/lib\//$scratch/var/lib/}"
	"${argv[@]}"
	n=$((n + 1))
done < <(sed -n 's/^ExecStopPost=//p' "$unit")
[ "$n" -gt 0 ] || { echo "$unit: no ExecStopPost publishes the metrics"; exit 1; }

# node_exporter as the package runs it: as user prometheus, on a port below the
# kernel's ephemeral range (32768 and up), where outgoing connections take theirs;
# another listener may still hold the port: then it tries another.
id prometheus >/dev/null
scrape() { # GET /metrics, with bash's own /dev/tcp
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
	cat <&3
}
body=
for _ in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 12000))
	runuser -u prometheus -- prometheus-node-exporter --web.listen-address="127.0.0.1:$port" \
		--collector.disable-defaults --collector.textfile --collector.textfile.directory="$scratch$textfile" \
		>"$scratch/exporter.log" 2>&1 &
	exporter=$!
	for _ in $(seq 50); do
		body=$(scrape 2>/dev/null) && break
		kill -0 "$exporter" 2>/dev/null || break # it exited
		sleep 0.1
	done
	[ -n "$body" ] && break
	grep -q 'address already in use' "$scratch/exporter.log" || break
done
if ! grep -q '^reconcile_last_pass_timestamp_seconds 1.764e+09' <<<"$body" || grep -q '^node_textfile_scrape_error 1' <<<"$body"; then
	echo "node_exporter does not serve the pass's metrics:"
	grep -E 'textfile|reconcile' <<<"$body" || true
	cat "$scratch/exporter.log"
	exit 1
fi
echo "units-check: node_exporter (as user prometheus) serves the metrics the timer's pass wrote"
