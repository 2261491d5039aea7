#!/usr/bin/env bash
# bench-watch.sh: how fast a crashed or hung PHP-FPM answers again through
# nginx with `cfguard watch --recover` (default interval), with systemd's
# Restart=on-failure (crash only) and with monit (30 s cycle), all in one
# run; and what the watch itself costs per hour. Prints a markdown table.
#
# Everything runs in a throwaway sandbox: a real systemd as PID 1 on an
# overlay of / in its own namespaces (see internal/sdtest); the host's
# services, files and ruleset are untouched. Needs root, hyperfine, monit,
# nginx, php8.2-fpm, jq. RUNS (default 3) timed runs per cell; COST_SECONDS
# (default 120) of the watch's own cost.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
COST_SECONDS=${COST_SECONDS:-120}
BOUND=300 # seconds: no wait in a run is longer

[ "$(id -u)" = 0 ] || { echo "bench-watch: needs root" >&2; exit 2; }
for c in unshare nsenter hyperfine monit nginx php-fpm8.2 jq; do
	command -v "$c" >/dev/null || { echo "bench-watch: $c is not installed" >&2; exit 2; }
done
export PATH="/usr/local/go/bin:$PATH"

mkdir -p /var/lib/cfguard-test
chmod 0700 /var/lib/cfguard-test
# One sandbox at a time on this machine (see internal/sdtest): they would
# share systemd's cgroup paths.
exec 9>/var/lib/cfguard-test/.lock
flock -w 600 9 || { echo "bench-watch: another sandbox holds /var/lib/cfguard-test/.lock" >&2; exit 1; }
W=$(mktemp -d /var/lib/cfguard-test/bench-XXXXXX)
UPID="" P=""
cleanup() {
	set +e
	if [ -n "$P" ]; then
		nsenter -t "$P" -a systemctl --no-block poweroff >/dev/null 2>&1
		for _ in $(seq 150); do kill -0 "$UPID" 2>/dev/null || break; sleep 0.2; done
		kill -0 "$UPID" 2>/dev/null && kill -9 "$P" 2>/dev/null
	fi
	[ -n "$UPID" ] && wait "$UPID" 2>/dev/null
	if grep -q " $W" /proc/self/mountinfo; then
		echo "bench-watch: mounts under $W leaked; not removing it" >&2
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT

# --- files put into the sandbox before it boots ---
up() { # up PATH MODE: stdin → the sandbox's PATH
	install -D -m "$2" /dev/stdin "$W/upper$1"
}
go build -trimpath -o "$W/cfguard" ./cmd/cfguard
up /usr/local/bin/cfguard 0755 <"$W/cfguard"
rm "$W/cfguard"
sed -e 's|^;ping.path = /ping$|ping.path = /ping|' -e 's|^;pm.status_path = /status$|pm.status_path = /status|' \
	/etc/php/8.2/fpm/pool.d/www.conf | up /etc/php/8.2/fpm/pool.d/www.conf 0644
up /etc/nginx/sites-enabled/default 0644 <<'EOF'
server {
	listen 127.0.0.1:80 default_server;
	root /var/www/cfguard-bench;
	index index.php;
	location / { try_files $uri $uri/ /index.php?$args; }
	location ~ \.php$ {
		include snippets/fastcgi-php.conf;
		fastcgi_pass unix:/run/php/php8.2-fpm.sock;
	}
}
EOF
echo "<?php echo 'ok';" | up /var/www/cfguard-bench/index.php 0644
# monit too: its SysV script would start it at boot; it runs only when measured.
for u in apache2 postgresql prometheus prometheus-node-exporter ufw e2scrub_reap monit; do
	mkdir -p "$W/upper/etc/systemd/system"
	ln -s /dev/null "$W/upper/etc/systemd/system/$u.service"
done
# monit at a 30 s cycle: the process by its pid file, and the page through
# nginx (a hung FPM makes it time out).
up /etc/monit/monitrc 0600 <<'EOF'
set daemon 30
set httpd port 2812 and use address 127.0.0.1 allow localhost
set log /var/log/monit.log
set idfile /var/lib/monit/id
set statefile /var/lib/monit/state
check process php-fpm with pidfile /run/php/php8.2-fpm.pid
	start program = "/bin/systemctl start php8.2-fpm.service"
	stop program = "/bin/systemctl stop php8.2-fpm.service"
	if failed host 127.0.0.1 port 80 protocol http request "/index.php" with timeout 5 seconds then restart
EOF
B=/usr/local/lib/cfguard-bench
up $B/page 0755 <<'EOF'
#!/bin/sh
exec curl -sf -o /dev/null --max-time 1 http://127.0.0.1/index.php
EOF
# crash: kill -9 of FPM's master; the clock runs until the page, having
# failed, answers again.
up $B/crash 0755 <<EOF
#!/bin/sh
pid=\$(systemctl show -p MainPID --value php8.2-fpm.service)
kill -9 "\$pid"
timeout 5 sh -c 'while $B/page; do sleep 0.01; done' || exit 1
exec timeout $BOUND sh -c 'until $B/page; do sleep 0.05; done'
EOF
# hang: SIGSTOP of every process of the unit.
up $B/hang 0755 <<EOF
#!/bin/sh
m=\$(systemctl show -p MainPID --value php8.2-fpm.service)
kill -STOP "\$m" \$(cat /proc/"\$m"/task/*/children)
# The page must fail first (a run where it never did measures nothing).
timeout 5 sh -c 'while $B/page; do sleep 0.01; done' || exit 1
exec timeout $BOUND sh -c 'until $B/page; do sleep 0.05; done'
EOF
# healthy: FPM running and answering (started again when a refused or
# missed recovery left it down).
up $B/healthy 0755 <<EOF
#!/bin/sh
if ! timeout 5 sh -c 'until $B/page; do sleep 0.1; done'; then
	systemctl kill -s CONT php8.2-fpm.service 2>/dev/null
	systemctl reset-failed php8.2-fpm.service 2>/dev/null
	systemctl restart php8.2-fpm.service
fi
exec timeout 60 sh -c 'until $B/page; do sleep 0.1; done'
EOF
# watch-armed: a fresh watch (a fresh rate limit) that has seen FPM up.
up $B/watch-armed 0755 <<EOF
#!/bin/sh
$B/healthy || exit 1
systemctl restart cfguard-watch-bench.service || exit 1
exec timeout 60 sh -c 'until curl -sf --max-time 2 http://127.0.0.1:9847/metrics | grep -q "^cfguard_backend_up{.*php8.2-fpm.* 1\$"; do sleep 0.2; done'
EOF
# monit-armed: FPM up and monit's last cycle saw it.
up $B/monit-armed 0755 <<EOF
#!/bin/sh
$B/healthy || exit 1
sleep 1
exec timeout 60 sh -c 'until monit -c /etc/monit/monitrc summary 2>/dev/null | grep -q "php-fpm.*OK"; do sleep 0.5; done'
EOF

# --- boot ---
BOOT='R=$W/root
mount -t overlay overlay -o lowerdir=/,upperdir=$W/upper,workdir=$W/work "$R"
mount -t proc proc "$R/proc"; mount --rbind /sys "$R/sys"; mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/run"; mount -t tmpfs tmpfs "$R/tmp"; mount -t tmpfs tmpfs "$R/var/tmp"
cd "$R"; mkdir -p old; pivot_root . old; umount -l /old
exec /lib/systemd/systemd --system --unit=multi-user.target'
mkdir -p "$W/work" "$W/root"
W="$W" unshare --pid --fork --kill-child=SIGKILL --mount --uts --ipc --net --propagation private \
	bash -euc "$BOOT" >"$W/console.log" 2>&1 &
UPID=$!
for _ in $(seq 200); do
	# PID 1 of the sandbox: the child of our unshare, once it is systemd.
	c=$(cat "/proc/$UPID/task/$UPID/children" 2>/dev/null || true)
	c=${c// /}
	if [ -n "$c" ] && [ "$(basename "$(readlink "/proc/$c/exe" 2>/dev/null)")" = systemd ]; then
		P=$c
		break
	fi
	sleep 0.1
done
[ -n "$P" ] || { echo "bench-watch: systemd did not start" >&2; cat "$W/console.log" >&2; exit 1; }
sb() { nsenter -t "$P" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C SYSTEMD_PAGER= "$@"; }
for _ in $(seq 480); do
	s=$(sb systemctl is-system-running 2>/dev/null || true)
	case $s in running | degraded) break ;; esac
	sleep 0.25
done
case $s in running | degraded) ;; *) echo "bench-watch: sandbox still $s" >&2; exit 1 ;; esac
sb $B/healthy || { echo "bench-watch: the PHP page does not answer in the sandbox" >&2; exit 1; }
sb /usr/local/bin/cfguard restore >/dev/null 2>&1 # the guard the watch checks
echo "sandbox up (systemd $(sb systemctl --version | head -1 | cut -d' ' -f2), PID 1 = $P on the host)" >&2

# hyperfine inside the sandbox; prints "mean min max" in seconds.
timed() { # timed NAME PREPARE COMMAND
	if ! sb hyperfine -N --runs "$RUNS" --prepare "$2" --export-json "/tmp/$1.json" "$3" >&2; then
		echo "failed"
		return
	fi
	sb cat "/tmp/$1.json" | jq -r '.results[0] | "\(.mean) \(.min) \(.max)"'
}
cell() { # "mean min max" → "m.m s (min–max)"
	awk '$1 == "failed" { print "measurement failed"; next } { printf "%.1f s (%.1f–%.1f)", $1, $2, $3 }'
}

echo "== cfguard watch --recover (defaults)" >&2
sb systemd-run --unit=cfguard-watch-bench -p Environment=NOTIFY_SOCKET= /usr/local/bin/cfguard watch --recover >/dev/null
watch_crash=$(timed watch-crash $B/watch-armed $B/crash | cell)
watch_hang=$(timed watch-hang $B/watch-armed $B/hang | cell)
sb systemctl stop cfguard-watch-bench.service

echo "== systemd Restart=on-failure" >&2
printf '[Service]\nRestart=on-failure\n' | sb sh -c 'mkdir -p /etc/systemd/system/php8.2-fpm.service.d && cat > /etc/systemd/system/php8.2-fpm.service.d/restart.conf'
sb systemctl daemon-reload
sd_crash=$(timed sd-crash $B/healthy $B/crash | cell)
sb rm /etc/systemd/system/php8.2-fpm.service.d/restart.conf
sb systemctl daemon-reload

echo "== monit, 30 s cycle" >&2
sb systemd-run --unit=monit-bench /usr/bin/monit -I -c /etc/monit/monitrc >/dev/null
monit_crash=$(timed monit-crash $B/monit-armed $B/crash | cell)
monit_hang=$(timed monit-hang $B/monit-armed $B/hang | cell)
sb systemctl stop monit-bench.service 2>/dev/null || true

echo "== the watch's own cost, ${COST_SECONDS}s at its default interval" >&2
sb $B/healthy
sb systemctl start cfguard-watch-bench.service 2>/dev/null ||
	sb systemd-run --unit=cfguard-watch-bench -p Environment=NOTIFY_SOCKET= /usr/local/bin/cfguard watch --recover >/dev/null
sleep 10 # past start-up: discovery, first full round
pid=$(sb systemctl show -p MainPID --value cfguard-watch-bench.service)
tck=$(getconf CLK_TCK)
ticks() { sb cat "/proc/$pid/stat" | awk '{ print $14 + $15 }'; }
t0=$(ticks) s0=$(date +%s.%N)
sleep "$COST_SECONDS"
t1=$(ticks) s1=$(date +%s.%N)
rss=$(sb awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
hwm=$(sb awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
cost=$(awk -v a="$t0" -v b="$t1" -v s0="$s0" -v s1="$s1" -v hz="$tck" 'BEGIN { printf "%.1f", (b - a) / hz * 3600 / (s1 - s0) }')

cat <<EOF

Time until the PHP page answers again through nginx (mean of $RUNS, min–max), measured with hyperfine in a sandboxed systemd $(sb systemctl --version | head -1 | cut -d' ' -f2):

| failure | cfguard watch --recover (5 s interval) | systemd Restart=on-failure | monit (30 s cycle, HTTP check) |
|---|---|---|---|
| kill -9 of the PHP-FPM master | $watch_crash | $sd_crash | $monit_crash |
| SIGSTOP of every PHP-FPM process | $watch_hang | not detected (the unit stays active) | $monit_hang |

The watch's own cost at its default interval: $cost CPU seconds per hour (${COST_SECONDS} s measured from /proc/PID/stat), RSS $((rss / 1024)) MiB (peak $((hwm / 1024)) MiB).
EOF
