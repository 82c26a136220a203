#!/bin/bash
# imgclassd-healthcheck [PORT [HOST]]: exits 0 when the daemon's own
# readiness endpoint, GET /readyz, answers 200; 1 otherwise (not listening,
# loading models, a model failed to load, draining), printing why.
#
# The image has no curl: this speaks HTTP/1.0 through bash's /dev/tcp.
# PORT defaults to $IMGCLASSD_PORT, then to the "port" of the config file
# ($IMGCLASSD_CONFIG, default /etc/imgclassd/imgclassd.json), then 8080.
# HOST defaults to 127.0.0.1 (::1 when IMGCLASSD_LISTEN is an IPv6 address).
# With auth_health on, put a token in IMGCLASSD_HEALTHCHECK_TOKEN.
set -u
conf=${IMGCLASSD_CONFIG:-/etc/imgclassd/imgclassd.json}
port=${1:-${IMGCLASSD_PORT:-}}
if [ -z "$port" ] && [ -r "$conf" ]; then
    port=$(sed -n 's/.*"port"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$conf" | head -1)
fi
port=${port:-8080}
host=${2:-127.0.0.1}
case ${IMGCLASSD_LISTEN:-} in *:*) host=${2:-::1} ;; esac

if ! exec 3<>"/dev/tcp/$host/$port"; then
    echo "imgclassd-healthcheck: nothing listens on $host port $port"
    exit 1
fi 2>/dev/null
auth=
[ -n "${IMGCLASSD_HEALTHCHECK_TOKEN:-}" ] && auth="Authorization: Bearer $IMGCLASSD_HEALTHCHECK_TOKEN"$'\r\n'
printf 'GET /readyz HTTP/1.0\r\nHost: localhost\r\n%sConnection: close\r\n\r\n' "$auth" >&3
if ! IFS= read -r -t 5 status <&3; then
    echo "imgclassd-healthcheck: no answer from $host port $port within 5 s"
    exit 1
fi
status=${status%$'\r'}
case $status in
"HTTP/1."?" 200"*) exit 0 ;;
esac
# The body says why (loading models, draining, which model failed).
body='' line=''
while IFS= read -r -t 2 line <&3; do body=$line; done
[ -n "$line" ] && body=$line # the last line has no newline
echo "imgclassd-healthcheck: $status ${body}"
exit 1
