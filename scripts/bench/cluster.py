"""Driver of scripts/bench-cluster: runs tiffin prove and risc0's local prover, prints a table."""
import re
import subprocess
import sys
import tempfile

bin_dir = sys.argv[1]
quick = "--quick" in sys.argv
# (kind, spin cycles, expected segments at po2 14)
cases = [("succinct", 1_000, 1), ("succinct", 20_000, 2), ("succinct", 50_000, 4),
         ("composite", 110_000, 8), ("composite", 460_000, 32)]
if quick:
    cases = [c for c in cases if c[2] in (1, 2, 8)]
po2 = 14

def tiffin(kind, cycles, agents):
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(
            [f"{bin_dir}/tiffin", "prove", "--sample", "spin", "--input-hex",
             cycles.to_bytes(4, "little").hex(), "--po2", str(po2), "--receipt-kind", kind,
             "--agents", str(agents), "--data-dir", d],
            capture_output=True, text=True, check=True).stdout
    wall = float(re.search(r"wall time:\s+([\d.]+)(m?s)", out).group(1))
    unit = re.search(r"wall time:\s+[\d.]+(m?s)", out).group(1)
    wall = wall / 1000 if unit == "ms" else wall
    first = re.search(r"first proof:\s+([\d.]+)(m?s)", out)
    first_s = (float(first.group(1)) / (1000 if first.group(2) == "ms" else 1)) if first else float("nan")
    segs = int(re.search(r"segments:\s+(\d+)", out).group(1))
    return wall, first_s, segs

def risc0(kind, cycles):
    out = subprocess.run([f"{bin_dir}/examples/risc0_local", str(cycles), str(po2), kind],
                         capture_output=True, text=True, check=True).stdout
    return float(re.search(r"wall_s=([\d.]+)", out).group(1))

print(f"spin guest at po2 {po2}; wall times in seconds; 'first proof' = first segment proven, from submit\n")
print("| receipt | segments | risc0 local | tiffin 1 agent | ratio | first proof | tiffin 2 agents | ratio |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for kind, cycles, _ in cases:
    base = risc0(kind, cycles)
    w1, f1, segs = tiffin(kind, cycles, 1)
    w2, _, _ = tiffin(kind, cycles, 2)
    print(f"| {kind} | {segs} | {base:.1f} | {w1:.1f} | {w1/base:.2f} | {f1:.1f} | {w2:.1f} | {w2/base:.2f} |", flush=True)
