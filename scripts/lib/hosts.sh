# shellcheck shell=bash
# Test hosts in network namespaces (scripts/hosts-up, hosts-down, hosts-link): names, addresses
# and the links between them.
#
# A "slot" N (0-63) is one network: namespaces tfhN-db, tfhN-api, tfhN-h1 … tfhN-hK on the
# private subnet 10.77.N.0/24, each joined by a veth pair to the bridge tfhN-br in the root
# namespace (10.77.N.1: the test or operator watching from the machine itself). There is no
# route out and no NAT: traffic stays between those addresses. Slots let several networks
# (two test processes, a script beside the suite) live on one machine at once; a slot is taken
# by creating /run/tiffin-hosts/N (atomic) and names its owner directory.
#
# Usage:   source scripts/lib/hosts.sh
#          hosts_slot_take DIR | hosts_slot_free N | hosts_slot_sweep
#          hosts_names N          # sets HOSTS_PREFIX, HOSTS_NET (e.g. tfh3, 10.77.3)
#          hosts_ns ROLE          # the namespace of a role: db, api, h1 …
#          hosts_exec ROLE CMD…   # run CMD in ROLE's namespace
#          hosts_wait_port ROLE PORT [TRIES]   # until ROLE listens on PORT
#          hosts_ip ROLE          # its address: db .2, api .3, hI .(10+I)
#          hosts_cut ROLE / hosts_heal ROLE            # its link down / up (a full partition)
#          hosts_block ROLE TARGET [PORT…] / hosts_unblock ROLE   # drop ROLE's traffic to
#                                 # TARGET (a role), on those TCP ports or all (nftables)
#          hosts_unit_argv UNIT BIN CREDS TLS  # a unit's ExecStart= (deploy/systemd/), one
#                                 # word a line, on this run's binary, credentials and TLS files
#          hosts_certs DIR ROLE…  # a throwaway CA (DIR/ca.pem) and a server certificate for
#                                 # each role's address (DIR/ROLE.pem, DIR/ROLE.key)

HOSTS_REGISTRY="${TIFFIN_HOSTS_REGISTRY:-/run/tiffin-hosts}"
HOSTS_MAX_SLOTS=64

hosts_require() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "hosts: network namespaces need root (run as root)" >&2
    return 1
  fi
  if ! ip netns list >/dev/null 2>&1; then
    echo "hosts: \`ip netns\` does not work here (iproute2 missing? run scripts/setup)" >&2
    return 1
  fi
  command -v nft >/dev/null || { echo "hosts: nft missing (run scripts/setup)" >&2; return 1; }
}

hosts_names() {
  HOSTS_SLOT="$1"
  HOSTS_PREFIX="tfh$1"
  HOSTS_NET="10.77.$1"
}

hosts_ns() { echo "$HOSTS_PREFIX-$1"; }

hosts_ip() {
  case "$1" in
    bridge) echo "$HOSTS_NET.1" ;;
    db) echo "$HOSTS_NET.2" ;;
    api) echo "$HOSTS_NET.3" ;;
    h[0-9]*) echo "$HOSTS_NET.$((10 + ${1#h}))" ;;
    *) echo "hosts: unknown role $1 (db, api, h1 …)" >&2; return 1 ;;
  esac
}

# Takes the first free slot for DIR; prints its number.
hosts_slot_take() {
  local dir="$1" n
  mkdir -p "$HOSTS_REGISTRY"
  for n in $(seq 0 $((HOSTS_MAX_SLOTS - 1))); do
    if mkdir "$HOSTS_REGISTRY/$n" 2>/dev/null; then
      echo "$dir" >"$HOSTS_REGISTRY/$n/owner"
      # A test names its own process: its slot is freed once it is gone, even if it was
      # killed before it could run hosts-down.
      if [ -n "${TIFFIN_HOSTS_OWNER_PID:-}" ]; then
        echo "$TIFFIN_HOSTS_OWNER_PID" >"$HOSTS_REGISTRY/$n/pid"
      fi
      echo "$n"
      return 0
    fi
  done
  echo "hosts: all $HOSTS_MAX_SLOTS slots taken (scripts/hosts-down --all)" >&2
  return 1
}

# Removes everything of slot N: processes in its namespaces, the namespaces, links, bridge.
hosts_slot_free() {
  hosts_names "$1"
  local ns pid link
  for ns in $(ip netns list | awk '{print $1}' | grep "^$HOSTS_PREFIX-" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  for link in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$HOSTS_PREFIX-" || true); do
    ip link del "$link" 2>/dev/null || true
  done
  rm -rf "${HOSTS_REGISTRY:?}/$1"
}

# Frees the slots whose owner directory or owning test process is gone (a crashed run's
# leftovers), stopping what still runs there.
hosts_slot_sweep() {
  local d owner pid
  for d in "$HOSTS_REGISTRY"/*/; do
    [ -d "$d" ] || continue
    owner="$(cat "$d/owner" 2>/dev/null || true)"
    pid="$(cat "$d/pid" 2>/dev/null || true)"
    if [ -z "$owner" ] || [ ! -d "$owner" ] || { [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; }; then
      echo "hosts: freeing slot $(basename "$d") (its owner ${owner:-?} is gone)" >&2
      [ -f "$owner/pg/pg_bin" ] && pg_down "$owner/pg"
      hosts_slot_free "$(basename "$d")"
      [ -n "$owner" ] && [ -f "$owner/slot" ] && rm -rf "$owner"
    fi
  done
}

# The bridge and one namespace per role, each with its veth pair.
hosts_net_up() {
  local roles=("$@") role ns
  ip link add "$HOSTS_PREFIX-br" type bridge
  ip addr add "$(hosts_ip bridge)/24" dev "$HOSTS_PREFIX-br"
  ip link set "$HOSTS_PREFIX-br" up
  for role in "${roles[@]}"; do
    ns="$(hosts_ns "$role")"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "$ns" type veth peer name eth0 netns "$ns"
    ip link set "$ns" master "$HOSTS_PREFIX-br" up
    ip -n "$ns" addr add "$(hosts_ip "$role")/24" dev eth0
    ip -n "$ns" link set eth0 up
  done
}

# Runs a command inside a role's namespace.
hosts_exec() {
  local role="$1"
  shift
  ip netns exec "$(hosts_ns "$role")" "$@"
}

# Waits until ROLE's PORT accepts connections (checked from inside its namespace), at most
# TRIES tenths of a second (default 200).
hosts_wait_port() {
  local role="$1" port="$2" tries="${3:-200}" ip
  ip="$(hosts_ip "$role")"
  for _ in $(seq "$tries"); do
    hosts_exec "$role" bash -c "echo >/dev/tcp/$ip/$port" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "hosts: $role never listened on $ip:$port" >&2
  return 1
}

hosts_cut() { ip link set "$(hosts_ns "$1")" down; }
hosts_heal() { ip link set "$(hosts_ns "$1")" up; }

hosts_block() {
  local role="$1" target="$2" ns ports rule
  shift 2
  ns="$(hosts_ns "$role")"
  rule="ip daddr $(hosts_ip "$target")"
  if [ $# -gt 0 ]; then
    ports="$(IFS=,; echo "$*")"
    rule="$rule tcp dport { $ports }"
  fi
  ip netns exec "$ns" nft add table inet tiffin_chaos
  ip netns exec "$ns" nft add chain inet tiffin_chaos out '{ type filter hook output priority 0; }'
  ip netns exec "$ns" nft add rule inet tiffin_chaos out "$rule" drop
}

hosts_unblock() {
  ip netns exec "$(hosts_ns "$1")" nft delete table inet tiffin_chaos 2>/dev/null || true
}

# A CA made for this run and a certificate per role, for its address and its role name (EC
# P-256, two days). The CA's key stays in DIR (mode 0600): nothing else ever trusts this CA.
hosts_certs() {
  local out="$1" role
  shift
  mkdir -p "$out"
  (
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -keyout "$out/ca.key" -out "$out/ca.pem" -subj "/CN=tiffin hosts test CA $HOSTS_PREFIX" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      2>/dev/null
    for role in "$@"; do
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$role" \
        -keyout "$out/$role.key" -out "$out/$role.csr" 2>/dev/null
      printf '%s\n' "subjectAltName=IP:$(hosts_ip "$role"),DNS:$role" "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$out/$role.ext"
      openssl x509 -req -in "$out/$role.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" \
        -CAcreateserial -days 2 -extfile "$out/$role.ext" -out "$out/$role.pem" 2>/dev/null
      rm -f "$out/$role.csr" "$out/$role.ext"
    done
  )
  chmod 644 "$out/ca.pem"
}

# The command line of a unit's ExecStart= (deploy/systemd/UNIT), one word a line, with the
# unit's paths put on this run's: /usr/local/bin/tiffin on BIN, the credentials directory %d on
# CREDS, /etc/tiffin/tls/NAME.crt|.key on TLS/NAME.pem|.key (ca.crt on TLS/ca.pem).
hosts_unit_argv() {
  local unit="$1" bin="$2" creds="$3" tls="$4"
  sed -n '/^ExecStart=/,/[^\\]$/p' "$unit" | sed 's/^ExecStart=//; s/\\$//' | tr -s ' \t' '\n' |
    grep -v '^$' |
    sed -e "s|^/usr/local/bin/tiffin\$|$bin|" -e "s|^%d/|$creds/|" \
      -e "s|^/etc/tiffin/tls/\(.*\)\.crt\$|$tls/\1.pem|" -e "s|^/etc/tiffin/tls/|$tls/|"
}
