"""Driver of scripts/bench-cluster: runs tiffin prove and risc0's local prover, prints a table."""
import re
import subprocess
import sys
import tempfile

bin_dir = sys.argv[1]
quick = "--quick" in sys.argv
# (kind, po2, spin cycles, segments measured with `examples/segments`): succinct jobs at po2 16
# (lift and join cost ~41 s whatever the po2, so bigger segments waste less), composite at 14.
cases = [("succinct", 16, 10_000, 1), ("succinct", 16, 35_000, 2), ("succinct", 16, 110_000, 4),
         ("composite", 14, 36_000, 8), ("composite", 14, 238_000, 32)]
if quick:
    cases = [c for c in cases if c[3] in (1, 2, 8)]
# --segments 1,8: only the cases with those segment counts (for a short run on a slow day).
if "--segments" in sys.argv:
    wanted = {int(n) for n in sys.argv[sys.argv.index("--segments") + 1].split(",")}
    cases = [c for c in cases if c[3] in wanted]

def tiffin(kind, po2, cycles, agents):
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
    peak = int(re.search(r"peak hot store:\s+(\d+)", out).group(1))
    return wall, first_s, segs, peak

def baseline():
    """Op times from the zkVM baseline table in docs/benchmarks.md (scripts/bench-zkvm)."""
    import os
    doc = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "benchmarks.md")
    text = open(doc).read()
    section = text.split("<!-- bench:zkvm -->")[1].split("<!-- /bench:zkvm -->")[0]
    ops = {}
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"[\d.]+", cells[2]):
            m = re.search(r"po2 (\d+)", cells[1])
            ops.setdefault((cells[0], int(m.group(1)) if m else None), []).append(float(cells[2]))
    return {k: sum(v) / len(v) for k, v in ops.items()}

OPS = baseline()

def raw_ops(kind, po2, segs):
    """Sum of the raw risc0 op times the job needs, run back to back (the physical limit)."""
    prove = OPS.get(("prove_segment", po2), float("nan"))
    if kind == "composite":
        return segs * prove
    lift = sum(v for (op, _), v in OPS.items() if op == "lift") / max(1, sum(1 for (op, _) in OPS if op == "lift"))
    join = OPS.get(("join", None), float("nan"))
    return segs * (prove + lift) + (segs - 1) * join

def risc0(kind, po2, cycles):
    out = subprocess.run([f"{bin_dir}/examples/risc0_local", str(cycles), str(po2), kind],
                         capture_output=True, text=True, check=True).stdout
    return float(re.search(r"wall_s=([\d.]+)", out).group(1))

print("spin guest; wall times in seconds; 'first proof' = first segment proven, from submit;")
print("'/ raw ops' = tiffin wall time over the sum of the zkVM baseline's op times for the job\n")
print("| receipt | po2 | segments | risc0 local | tiffin 1 agent | / risc0 | / raw ops | first proof | peak hot KiB | tiffin 2 agents | / risc0 |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for kind, po2, cycles, _ in cases:
    base = risc0(kind, po2, cycles)
    w1, f1, segs, peak = tiffin(kind, po2, cycles, 1)
    w2, _, _, _ = tiffin(kind, po2, cycles, 2)
    ops = raw_ops(kind, po2, segs)
    print(f"| {kind} | {po2} | {segs} | {base:.1f} | {w1:.1f} | {w1/base:.2f} | {w1/ops:.2f} | {f1:.1f} | {peak/1024:.0f} | {w2:.1f} | {w2/base:.2f} |", flush=True)
