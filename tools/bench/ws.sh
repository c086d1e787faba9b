#!/usr/bin/env bash
# WebSocket relay benchmark: sluice vs nginx in one run, in front of the same
# ws echo server (Node), with a Node round-trip load client.
#   tools/bench/ws.sh [seconds per run, default 10]
# Prints a Markdown table: messages/s and round-trip p50/p99 for 50 and 500
# connections, plus "direct to backend" as the upper bound.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
tools/bootstrap
command -v nginx >/dev/null || { sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo); "${sudo_cmd[@]}" apt-get install -y -qq nginx >/dev/null; }
dir=$(tools/build release)
export NODE_PATH="$PWD/tests/integration/node/node_modules"

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
backend=$(free_port); nginx_port=$(free_port); sluice_port=$(free_port)

node tests/integration/node/peers.js ws-echo "$backend" > "$work/backend.out" & pids+=($!)
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx.err warn;
worker_rlimit_nofile 20000;
events { worker_connections 16384; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://127.0.0.1:$backend;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 1h;
    }
  }
}
CONF
cat > "$work/sluice.toml" <<CONF
[server]
workers = 1
access_log = "off"
[[listener]]
address = "127.0.0.1:$sluice_port"
[admin]
address = "127.0.0.1:0"
[upstream.ws]
servers = ["127.0.0.1:$backend"]
[[route]]
name = "ws"
prefix = "/"
upstream = "ws"
kind = "websocket"
CONF
nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)
"$dir/sluice" --config "$work/sluice.toml" 2>"$work/sluice.err" & pids+=($!)
sleep 1

run() { node tools/bench/ws_load.js "ws://127.0.0.1:$1/" "$2" 64 "$secs"; }
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
echo "| connections | target | messages/s | p50 ms | p99 ms | vs nginx |"
echo "| ---: | --- | ---: | ---: | ---: | ---: |"
for conns in 100 500; do
  d=$(run "$backend" "$conns"); n=$(run "$nginx_port" "$conns"); s=$(run "$sluice_port" "$conns")
  ratio=$(awk -v a="$(field "$s" msgs_per_s)" -v b="$(field "$n" msgs_per_s)" 'BEGIN{printf "%.2fx", a/b}')
  echo "| $conns | direct to backend | $(field "$d" msgs_per_s) | $(field "$d" p50) | $(field "$d" p99) | |"
  echo "| $conns | nginx | $(field "$n" msgs_per_s) | $(field "$n" p50) | $(field "$n" p99) | 1.00x |"
  echo "| $conns | sluice | $(field "$s" msgs_per_s) | $(field "$s" p50) | $(field "$s" p99) | $ratio |"
done
echo
echo "64-byte messages, one in flight per connection, ${secs}s per run, 1 proxy worker, $(nproc) cores."
echo
echo "| target | upgrades/s (50 loops) | vs nginx |"
echo "| --- | ---: | ---: |"
d=$(node tools/bench/ws_load.js "ws://127.0.0.1:$backend/" 50 upgrades "$secs")
n=$(node tools/bench/ws_load.js "ws://127.0.0.1:$nginx_port/" 50 upgrades "$secs")
s=$(node tools/bench/ws_load.js "ws://127.0.0.1:$sluice_port/" 50 upgrades "$secs")
echo "| direct to backend | $(field "$d" upgrades_per_s) | |"
echo "| nginx | $(field "$n" upgrades_per_s) | 1.00x |"
echo "| sluice | $(field "$s" upgrades_per_s) | $(awk -v a="$(field "$s" upgrades_per_s)" -v b="$(field "$n" upgrades_per_s)" 'BEGIN{printf "%.2fx", a/b}') |"

# Memory per idle tunnel: proxy RSS growth with N idle WebSockets open.
idle=${SLUICE_BENCH_IDLE:-5000}
nginx_worker=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)
sluice_pid=${pids[2]}
echo
echo "| target | idle tunnels | RSS growth | bytes per tunnel |"
echo "| --- | ---: | ---: | ---: |"
for target in nginx sluice; do
  if [ "$target" = nginx ]; then port=$nginx_port; pid=$nginx_worker; else port=$sluice_port; pid=$sluice_pid; fi
  before=$(rss_kib "$pid")
  coproc IDLE { node tests/integration/node/ws_cases.js "ws://127.0.0.1:$port/" idle "$idle"; }
  read -r line <&"${IDLE[0]}"
  sleep 1
  after=$(rss_kib "$pid")
  kill "$IDLE_PID" 2>/dev/null || true
  wait "$IDLE_PID" 2>/dev/null || true
  echo "| $target | ${line#open } | $(( (after - before) / 1024 )) MiB | $(( (after - before) * 1024 / idle )) |"
  sleep 2
done
