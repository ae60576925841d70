# shellcheck shell=bash
# Shared by loadtest/run.sh and loadtest/callgrind.sh (sourced, not run):
# the peers' configurations, written the same way for both, and the
# process helpers. Expects $work (a scratch folder) to be set; every
# process started through `start` is stopped, by PID, on exit.
#
# Peers:
#   edge-gateway  a manifests folder with one host-less Ingress (the default
#                 server, like nginx's `_`) to the upstream, and TLS Secrets
#   nginx         ingress-nginx's nginx.tmpl as rendered with the default
#                 ConfigMap, minus its Lua (balancer, monitor, certificate)
#   haproxy       one thread, keep-alive, http-reuse always, http-no-delay,
#                 the same request headers as ingress-nginx sets
# Every proxy sends to the upstream at 127.0.0.1:$upstream_port.

: "${work:?set work to a scratch folder before sourcing peers.sh}"
upstream_port=${upstream_port:-19000}
# shellcheck source=loadtest/processes.sh
source "$(dirname "${BASH_SOURCE[0]}")/processes.sh"

# utime + stime of a process and all its threads, in clock ticks.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# wait_http URL: waits (20 s at most) until URL answers 200.
wait_http() {
    local _
    for _ in $(seq 200); do
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}

# The first child of PID (nginx's worker), waited for.
child_of() {
    local child='' _
    for _ in $(seq 100); do
        child=$(pgrep -P "$1" | head -1 || true)
        [ -n "$child" ] && break
        sleep 0.1
    done
    echo "$child"
}

# Self-signed RSA-2048 and ECDSA P-256 certificates for bench.local, as
# $work/{rsa,ecdsa}.{crt,key,pem}.
make_certs() {
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=bench.local \
        -addext subjectAltName=DNS:bench.local -keyout "$work/rsa.key" -out "$work/rsa.crt" 2>/dev/null
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=bench.local \
        -addext subjectAltName=DNS:bench.local -keyout "$work/ecdsa.key" -out "$work/ecdsa.crt" 2>/dev/null
    cat "$work/rsa.crt" "$work/rsa.key" >"$work/rsa.pem"
    cat "$work/ecdsa.crt" "$work/ecdsa.key" >"$work/ecdsa.pem"
}

# gateway_manifests DIR: the gateway's manifests folder (needs make_certs).
gateway_manifests() {
    mkdir -p "$1"
    /usr/bin/python3 - "$work" "$1" "$upstream_port" <<'PY'
import json, sys
work, out, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def secret(name):
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": "bench"},
            "stringData": {"tls.crt": open(f"{work}/{name}.crt").read(),
                           "tls.key": open(f"{work}/{name}.key").read()}}
items = [
    {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"},
     "spec": {"controller": "k8s.io/ingress-nginx"}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "upstream", "namespace": "bench"},
     "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]}},
    {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
     "metadata": {"name": "upstream-1", "namespace": "bench",
                  "labels": {"kubernetes.io/service-name": "upstream"}},
     "addressType": "IPv4", "ports": [{"name": "http", "port": port}],
     "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]},
    {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
     "metadata": {"name": "bench", "namespace": "bench"},
     "spec": {"ingressClassName": "nginx", "rules": [{"http": {"paths": [
         {"path": "/", "pathType": "Prefix",
          "backend": {"service": {"name": "upstream", "port": {"number": 80}}}}]}}]}},
    secret("rsa"), secret("ecdsa"),
]
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, open(f"{out}/bench.json", "w"))
PY
}

# gateway_args HTTP HTTPS ADMIN SECRET MANIFESTS: the serving flags, with
# request metrics and the (JSON, stdout) access log on.
gateway_args() {
    echo --manifests "$5" --bind-address 127.0.0.1 --http-port "$1" --https-port "$2" \
        --metrics-port "$3" --default-ssl-certificate "bench/$4" --enable-metrics \
        --access-log json --update-status=false --drain-timeout 2
}

# nginx_conf DIR HTTP HTTPS_RSA HTTPS_ECDSA BUFFER [single]: writes
# DIR/nginx.conf; `single` runs without a master process (for valgrind).
nginx_conf() {
    local dir=$1 master=on
    [ "${6:-}" = single ] && master=off
    mkdir -p "$dir/logs" "$dir/tmp"
    chmod 1777 "$dir/tmp"
    cat >"$dir/nginx.conf" <<CONF
# ingress-nginx's nginx.tmpl, as rendered with the default ConfigMap, minus
# its Lua (balancer, monitor, certificate): one worker.
daemon off;
master_process $master;
worker_processes 1;
worker_rlimit_nofile 65535;
pid $dir/nginx.pid;
error_log $dir/logs/error.log notice;
events {
    multi_accept on;
    worker_connections 16384;
    use epoll;
}
http {
    client_body_temp_path $dir/tmp/client-body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    aio threads;
    aio_write on;
    tcp_nopush on;
    tcp_nodelay on;
    log_subrequest on;
    reset_timedout_connection on;
    keepalive_timeout 75s;
    keepalive_requests 1000;
    client_body_buffer_size 8k;
    client_header_buffer_size 1k;
    client_header_timeout 60s;
    large_client_header_buffers 4 8k;
    client_body_timeout 60s;
    http2_max_concurrent_streams 128;
    types_hash_max_size 2048;
    server_names_hash_max_size 1024;
    server_names_hash_bucket_size 64;
    map_hash_bucket_size 64;
    proxy_headers_hash_max_size 512;
    proxy_headers_hash_bucket_size 64;
    variables_hash_bucket_size 256;
    variables_hash_max_size 2048;
    underscores_in_headers off;
    ignore_invalid_headers on;
    limit_req_status 503;
    limit_conn_status 503;
    include /etc/nginx/mime.types;
    default_type text/html;
    gzip off;
    server_tokens off;
    log_format upstreaminfo '\$remote_addr - \$remote_user [\$time_local] "\$request" \$status \$body_bytes_sent "\$http_referer" "\$http_user_agent" \$request_length \$request_time [\$proxy_upstream_name] [\$proxy_alternative_upstream_name] \$upstream_addr \$upstream_response_length \$upstream_response_time \$upstream_status \$req_id';
    map \$request_uri \$loggable { default 1; }
    access_log /dev/null upstreaminfo if=\$loggable;
    map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
    map \$http_x_request_id \$req_id { default \$http_x_request_id; "" \$request_id; }
    server_name_in_redirect off;
    port_in_redirect off;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_early_data off;
    ssl_session_cache shared:SSL:10m;
    ssl_session_timeout 10m;
    ssl_session_tickets off;
    ssl_buffer_size 4k;
    ssl_ciphers 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384';
    ssl_prefer_server_ciphers on;
    ssl_ecdh_curve auto;
    upstream upstream_balancer {
        server 127.0.0.1:$upstream_port;
        keepalive 320;
        keepalive_time 1h;
        keepalive_timeout 60s;
        keepalive_requests 10000;
    }
    server {
        server_name _;
        listen 127.0.0.1:$2 default_server reuseport backlog=4096;
        listen 127.0.0.1:$3 default_server reuseport backlog=4096 ssl http2;
        ssl_certificate $work/rsa.crt;
        ssl_certificate_key $work/rsa.key;
        include $dir/locations.conf;
    }
    server {
        server_name _;
        listen 127.0.0.1:$4 default_server reuseport backlog=4096 ssl http2;
        ssl_certificate $work/ecdsa.crt;
        ssl_certificate_key $work/ecdsa.key;
        include $dir/locations.conf;
    }
}
CONF
    cat >"$dir/locations.conf" <<CONF
set \$proxy_upstream_name "-";
set \$proxy_alternative_upstream_name "";
location /healthz {
    access_log off;
    return 200;
}
location / {
    set \$namespace "bench";
    set \$ingress_name "bench";
    set \$service_name "upstream";
    set \$service_port "80";
    set \$location_path "/";
    set \$proxy_upstream_name "bench-upstream-80";
    set \$proxy_host \$proxy_upstream_name;
    set \$pass_access_scheme \$scheme;
    set \$pass_server_port \$server_port;
    set \$best_http_host \$http_host;
    set \$pass_port \$pass_server_port;
    client_max_body_size 1m;
    proxy_set_header Host \$best_http_host;
    proxy_set_header Upgrade \$http_upgrade;
    proxy_set_header Connection \$connection_upgrade;
    proxy_set_header X-Request-ID \$req_id;
    proxy_set_header X-Real-IP \$remote_addr;
    proxy_set_header X-Forwarded-For \$remote_addr;
    proxy_set_header X-Forwarded-Host \$best_http_host;
    proxy_set_header X-Forwarded-Port \$pass_port;
    proxy_set_header X-Forwarded-Proto \$pass_access_scheme;
    proxy_set_header X-Forwarded-Scheme \$pass_access_scheme;
    proxy_set_header X-Scheme \$pass_access_scheme;
    proxy_set_header X-Original-Forwarded-For \$http_x_forwarded_for;
    proxy_set_header Proxy "";
    proxy_connect_timeout 5s;
    proxy_send_timeout 60s;
    proxy_read_timeout 60s;
    proxy_buffering off;
    proxy_buffer_size $5;
    proxy_buffers 4 $5;
    proxy_max_temp_file_size 1024m;
    proxy_request_buffering on;
    proxy_http_version 1.1;
    proxy_cookie_domain off;
    proxy_cookie_path off;
    proxy_next_upstream error timeout;
    proxy_next_upstream_timeout 0;
    proxy_next_upstream_tries 3;
    proxy_pass http://upstream_balancer;
    proxy_redirect off;
}
CONF
    # Debian's nginx-light has no thread pools: drop aio threads there.
    if ! nginx -t -p "$dir" -c nginx.conf >/dev/null 2>&1; then
        sed -i -e '/aio threads;/d' -e '/aio_write on;/d' "$dir/nginx.conf"
    fi
    nginx -t -p "$dir" -c nginx.conf >"$dir/nginx-t.txt" 2>&1 || {
        cat "$dir/nginx-t.txt" >&2
        return 1
    }
}

# haproxy_cfg DIR HTTP HTTPS_RSA HTTPS_ECDSA: writes DIR/haproxy.cfg (one
# thread; its log goes to stdout).
haproxy_cfg() {
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 8000
    log stdout format raw local0
    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
    tune.ssl.default-dh-param 2048
defaults
    mode http
    log global
    option httplog
    option http-keep-alive
    option http-no-delay
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 60s
    timeout http-keep-alive 75s
frontend bench
    bind 127.0.0.1:$2
    bind 127.0.0.1:$3 ssl crt $work/rsa.pem alpn h2,http/1.1
    bind 127.0.0.1:$4 ssl crt $work/ecdsa.pem alpn h2,http/1.1
    http-request return status 200 if { path /healthz }
    unique-id-format %[uuid]
    http-request set-header X-Request-ID %[unique-id] unless { req.hdr(x-request-id) -m found }
    http-request set-header X-Original-Forwarded-For %[req.hdr(x-forwarded-for)] if { req.hdr(x-forwarded-for) -m found }
    http-request set-header X-Real-IP %[src]
    http-request set-header X-Forwarded-For %[src]
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    http-request set-header X-Forwarded-Port %[dst_port]
    http-request set-header X-Forwarded-Proto %[ssl_fc,iif(https,http)]
    http-request set-header X-Forwarded-Scheme %[ssl_fc,iif(https,http)]
    http-request set-header X-Scheme %[ssl_fc,iif(https,http)]
    http-request del-header Proxy
    default_backend upstream
backend upstream
    server upstream 127.0.0.1:$upstream_port
CONF
    haproxy -c -f "$dir/haproxy.cfg" >"$dir/check.txt" 2>&1 || {
        cat "$dir/check.txt" >&2
        return 1
    }
}
