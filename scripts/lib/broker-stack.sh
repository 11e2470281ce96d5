# The market stack on one machine, for scripts/broker-demo and scripts/bench-broker (sourced):
# a local chain (anvil + our contracts), the embedded cluster (`tiffin up`), the verifier
# service and one broker with collateral. `broker_stack_up WORK PO2 [BATCH]` starts it all
# under WORK (the broker proving and batching BATCH orders at a time, default 1) and stops it
# at exit; afterwards $tiffin, $api, $key and $verifier are set and the chain's
# env is sourced.

# Waits until FILE has a line starting with PREFIX (after any indentation) and prints the rest
# of that line.
await_line() {
  for _ in $(seq 600); do
    if line="$(grep -m1 "^ *$2" "$1" 2>/dev/null)"; then line="${line#"${line%%[! ]*}"}"; echo "${line#"$2"}"; return; fi
    sleep 0.1
  done
  echo "no '$2' in $1" >&2; cat "$1" >&2; exit 1
}

broker_stack_down() {
  for p in "${stack_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/chain-down >/dev/null
}

broker_stack_up() {
  local work="$1" po2="$2" batch="${3:-1}"
  tiffin="$CARGO_TARGET_DIR/debug/tiffin"
  rm -rf "$work" && mkdir -p "$work"
  export TIFFIN_CHAIN_DIR="$work/chain"
  stack_pids=()
  trap broker_stack_down EXIT
  scripts/chain-up
  source "$TIFFIN_CHAIN_DIR/env"
  "$tiffin" up --listen 127.0.0.1:0 --po2 "$po2" --data-dir "$work/cluster" >"$work/up.log" 2>&1 &
  stack_pids+=($!)
  api="$(await_line "$work/up.log" "Tiffin API listening on ")"
  key="$(await_line "$work/up.log" "export BONSAI_API_KEY=")"
  local keys="$TIFFIN_CHAIN_DIR/keys"
  TIFFIN_ATTESTOR_KEY_FILE="$keys/attestor.key" \
    "$tiffin" market verifier --listen 127.0.0.1:0 >"$work/verifier.log" 2>&1 &
  stack_pids+=($!)
  verifier="$(await_line "$work/verifier.log" "verifier listening on ")"

  # The prover puts up collateral; the broker proves composite receipts (no recursion) and
  # polls every half second.
  PRIVATE_KEY_FILE="$keys/prover.key" "$tiffin" market deposit-collateral 100 >/dev/null
  sed -e 's/^receipt_kind = .*/receipt_kind = "composite"/' \
      -e 's/^min_deadline = .*/min_deadline = 60/' \
      -e 's/^events_poll_ms = .*/events_poll_ms = 500/' \
      -e 's/^status_poll_ms = .*/status_poll_ms = 500/' \
      -e 's/^batch_poll_time_ms = .*/batch_poll_time_ms = 500/' \
      -e "s/^min_batch_size = .*/min_batch_size = $batch/" \
      -e "s/^max_concurrent_proofs = .*/max_concurrent_proofs = $batch/" \
      deploy/broker-template.toml >"$work/broker.toml"
  PRIVATE_KEY_FILE="$keys/prover.key" BONSAI_API_URL="$api" BONSAI_API_KEY="$key" \
    TIFFIN_VERIFIER_URL="$verifier" TIFFIN_LOG=info \
    "$tiffin" broker --config "$work/broker.toml" --db "$work/broker.db" >"$work/broker.log" 2>&1 &
  stack_pids+=($!)
}

# submit_request SAMPLE INPUT_HEX: submits a request from the requestor key; prints its id.
submit_request() {
  PRIVATE_KEY_FILE="$TIFFIN_CHAIN_DIR/keys/requestor.key" \
    "$tiffin" market submit --sample "$1" --input-hex "$2" --min-price 0.001ether \
    --max-price 0.01ether --ramp-up 30 --lock-collateral 10 --value 0.01ether \
    | sed -n 's/^request id: *//p'
}
