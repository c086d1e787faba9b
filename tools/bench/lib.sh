# Shared by the proxy benchmarks (sourced, not run): tools, the release
# build, a work directory whose processes die with the script, free ports and
# the nginx backend every benchmark proxies to.
#   bench_setup nginx wrk ...   installs what is missing; sets $dir (release build), $work, pids
#   free_port                   prints a free TCP port on 127.0.0.1
#   backend_conf FILE PORT      an nginx config answering a small fixed body on PORT

bench_setup() {
  local need=() tool
  for tool in "$@"; do command -v "$tool" >/dev/null || need+=("$tool"); done
  if [ ${#need[@]} -gt 0 ]; then
    local sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  dir=$(tools/build release)
  work=$(mktemp -d)
  pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

backend_conf() {
  cat > "$1" <<CONF
worker_processes 1;
daemon off;
pid $work/backend.pid;
error_log $work/backend.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$2 reuseport;
    location / { return 200 "hello from the backend, a small API answer\n"; }
  }
}
CONF
}

# proxy_conf FILE WORKERS BACKEND_PORT LISTEN [SERVER_LINES]: nginx as the
# reference proxy (upstream keep-alive 32, no buffering), listening on LISTEN
# ("127.0.0.1:8080 reuseport"), with SERVER_LINES added to its server block.
proxy_conf() {
  cat > "$1" <<CONF
worker_processes $2;
daemon off;
pid $work/proxy.pid;
error_log $work/proxy.err warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$3; keepalive 32; }
  server {
    listen $4;
${5:-}
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
CONF
}
