# The demo's and the tunnel benchmark's topology, sourced by both (bash):
#   client 10.99.0.1 ──veth── 10.99.0.2 gateway (portal :8081, relay :3478) 10.77.0.1 ──veth── 10.77.0.5 resource
# The relay is our firezone-relay (LAB_RELAY=ours, the default) or coturn (LAB_RELAY=coturn); both listen on TCP 3478
# and, with a certificate for 10.99.0.2 made in the lab's directory, TLS 443. LAB_CLIENT_BLOCK=udp drops every UDP
# datagram the client sends on its link (a network that blocks UDP: the client reaches the relay over TCP),
# LAB_CLIENT_BLOCK=udp+tcp also TCP to port 3478 (over TLS then; the client trusts the lab's certificate).
# Needs: bin (where firezone-portal, -relay, -gateway and -client are). Defines lab_up, the namespaces $C $G $R, the
# gateway's and client's PIDs $GATEWAY_PID $CLIENT_PID, and an EXIT trap that removes everything again.
suffix=$$
C=fzdemo-client-$suffix G=fzdemo-gateway-$suffix R=fzdemo-resource-$suffix
work=$(mktemp -d)
pids=()
cleanup() {
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for ns in "$C" "$G" "$R"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "/etc/netns/$G" "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

start() {  # start NAMESPACE LOG COMMAND...: in the background, its PID remembered for the teardown
    local ns=$1 log=$2; shift 2
    ip netns exec "$ns" "$@" >"$work/$log" 2>&1 &
    pids+=($!)
}
wait_for() {  # wait_for FILE TEXT: up to 30 s
    for _ in $(seq 300); do grep -q "$2" "$work/$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "lab: '$2' never appeared in $1:" >&2; tail -n 20 "$work/$1" >&2; exit 1
}
lab_step() { [[ ${LAB_QUIET:-0} == 1 ]] || printf '\n== %s\n' "$*"; }

lab_up() {
    lab_step "namespaces: client, gateway (with the portal and the relay), resource host"
    for ns in "$C" "$G" "$R"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
    ip link add fzd-c$suffix netns "$C" type veth peer name fzd-gc$suffix netns "$G"
    ip link add fzd-g$suffix netns "$G" type veth peer name fzd-r$suffix netns "$R"
    ip -n "$C" addr add 10.99.0.1/24 dev fzd-c$suffix; ip -n "$C" link set fzd-c$suffix up
    ip -n "$G" addr add 10.99.0.2/24 dev fzd-gc$suffix; ip -n "$G" link set fzd-gc$suffix up
    ip -n "$G" addr add 10.77.0.1/24 dev fzd-g$suffix; ip -n "$G" link set fzd-g$suffix up
    ip -n "$R" addr add 10.77.0.5/24 dev fzd-r$suffix; ip -n "$R" link set fzd-r$suffix up
    ip -n "$R" route add default via 10.77.0.1
    # Forwarding and masquerading towards the resource host are firezone-gateway's own doing.
    mkdir -p "/etc/netns/$G" && echo "nameserver 10.77.0.5" >"/etc/netns/$G/resolv.conf"
    [[ ${LAB_QUIET:-0} == 1 ]] || echo "client 10.99.0.1 | gateway 10.99.0.2, 10.77.0.1 | resource 10.77.0.5"

    lab_step "resource host: a web page on :80 and :8080, dnsmasq saying www.wiki.example is 10.77.0.5"
    mkdir -p "$work/www" && echo "hello from the wiki" >"$work/www/index.html"
    start "$R" web80.log python3 -u -m http.server --bind 10.77.0.5 --directory "$work/www" 80
    start "$R" web8080.log python3 -u -m http.server --bind 10.77.0.5 --directory "$work/www" 8080
    start "$R" dnsmasq.log dnsmasq --no-daemon --log-facility=- --no-resolv --no-hosts --bind-interfaces \
        --listen-address=10.77.0.5 --address=/wiki.example/10.77.0.5
    start "$R" iperf3.log iperf3 -s -B 10.77.0.5
    wait_for web80.log "Serving HTTP"; wait_for web8080.log "Serving HTTP"; wait_for dnsmasq.log "started"

    local relay=${LAB_RELAY:-ours}
    lab_step "portal and relay ($relay) in the gateway's namespace"
    cat >"$work/portal.yaml" <<'YAML'
account_slug: demo
upstream_dns: [10.77.0.5]
sites:
  - name: hq
    gateway_tokens: [gateway-token-hq]
actors:
  - name: alice
    tokens: [client-token-alice]
resources:
  - name: lab
    type: cidr
    address: 10.77.0.0/24
    sites: [hq]
    filters: [icmp, tcp/80, tcp/5201, udp/5201]
  - name: wiki
    type: dns
    address: "*.wiki.example"
    ip_stack: ipv4_only
    sites: [hq]
    filters: [tcp/80]
policies:
  - actor: alice
    resource: lab
  - actor: alice
    resource: wiki
YAML
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -keyout "$work/relay-key.pem" \
        -out "$work/relay-cert.pem" -subj /CN=lab-relay -addext subjectAltName=IP:10.99.0.2 >/dev/null 2>&1
    case $relay in
    ours)
        # The relay joins the portal (below) with a secret of its own; the portal mints credentials from it.
        printf 'relay_tokens: [relay-token-demo]\n' >>"$work/portal.yaml"
        ;;
    coturn)
        printf 'relays:\n  - name: coturn\n    addresses: ["10.99.0.2:3478"]\n    coturn_secret: demo-turn-secret\n' >>"$work/portal.yaml"
        start "$G" coturn.log turnserver -n --listening-ip=10.99.0.2 --listening-port=3478 --relay-ip=10.99.0.2 --min-port=49152 \
            --max-port=65535 --realm=firezone --use-auth-secret --static-auth-secret=demo-turn-secret --fingerprint --no-dtls \
            --tls-listening-port=443 --cert="$work/relay-cert.pem" --pkey="$work/relay-key.pem" \
            --no-cli --simple-log --log-file=stdout
        ;;
    *) echo "lab: LAB_RELAY is ours or coturn, not '$relay'" >&2; exit 64 ;;
    esac
    start "$G" portal.log "$bin/firezone-portal" --config "$work/portal.yaml" --listen 10.99.0.2:8081 --database "$work/portal.sqlite"
    wait_for portal.log "listening on 10.99.0.2:8081"
    if [[ $relay == ours ]]; then
        start "$G" relay.log env FIREZONE_API_URL=ws://10.99.0.2:8081 FIREZONE_NAME=demo-relay \
            "$bin/firezone-relay" --public-ip4-addr 10.99.0.2 --health-check-addr 127.0.0.1:8089 \
            --tls-certificate "$work/relay-cert.pem" --tls-private-key "$work/relay-key.pem" relay-token-demo
        wait_for relay.log "Connected to portal"
    fi
    [[ ${LAB_QUIET:-0} == 1 ]] || echo "portal listening on ws://10.99.0.2:8081, $relay relay on 10.99.0.2:3478"

    lab_step "firezone-gateway"
    start "$G" gateway.log env FIREZONE_API_URL=ws://10.99.0.2:8081 FIREZONE_ID=demo-gateway HEALTH_CHECK_ADDR=127.0.0.1:8080 \
        FIREZONE_STATUS_SOCKET="$work/gateway.status.sock" "$bin/firezone-gateway" gateway-token-hq
    GATEWAY_PID=${pids[-1]}
    wait_for gateway.log "TUN device configured"
    [[ ${LAB_QUIET:-0} == 1 ]] || grep -E "Connected to portal|TUN device configured" "$work/gateway.log"

    lab_step "firezone-client"
    case ${LAB_CLIENT_BLOCK:-} in
    "") ;;
    udp|udp+tcp)
        ip netns exec "$C" nft add table inet fzlabblock
        ip netns exec "$C" nft add chain inet fzlabblock output "{ type filter hook output priority 0 ; }"
        ip netns exec "$C" nft add rule inet fzlabblock output oifname "fzd-c$suffix" meta l4proto udp counter drop
        [[ $LAB_CLIENT_BLOCK == udp ]] || ip netns exec "$C" nft add rule inet fzlabblock output oifname "fzd-c$suffix" tcp dport 3478 counter drop
        ;;
    *) echo "lab: LAB_CLIENT_BLOCK is udp or udp+tcp, not '$LAB_CLIENT_BLOCK'" >&2; exit 64 ;;
    esac
    start "$C" client.log env FIREZONE_API_URL=ws://10.99.0.2:8081 FIREZONE_ID=demo-client FIREZONE_TOKEN=client-token-alice \
        SSL_CERT_FILE="$work/relay-cert.pem" \
        FIREZONE_STATUS_SOCKET="$work/client.status.sock" "$bin/firezone-client" --dns-control disabled
    CLIENT_PID=${pids[-1]}
    wait_for client.log "Tunnel ready"
    [[ ${LAB_QUIET:-0} == 1 ]] || grep -E "Connected to portal|TUN device configured|Tunnel ready" "$work/client.log"
}
