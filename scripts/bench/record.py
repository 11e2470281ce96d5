"""Replaces one benchmark's section of docs/benchmarks.md with a fresh table.

Usage: record.py SECTION COMMAND TABLE_FILE
The section is delimited by <!-- bench:SECTION --> ... <!-- /bench:SECTION --> markers and is
appended if missing. The machine description and date are written with the table.
"""
import datetime
import os
import platform
import re
import subprocess
import sys

section, command, table_file = sys.argv[1:4]
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
doc = os.path.join(root, "docs", "benchmarks.md")

def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"

mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
gpu = "no GPU"
try:
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    if out.returncode == 0 and out.stdout.strip():
        gpu = out.stdout.strip().replace("\n", "; ")
except (OSError, subprocess.SubprocessError):
    pass
machine = f"{os.cpu_count()} cores ({cpu_model()}), {mem_gib:.0f} GiB RAM, {gpu}"
table = open(table_file).read().strip()
block = (
    f"<!-- bench:{section} -->\n"
    f"Measured {datetime.date.today()} on {machine}.\n"
    f"Reproduce: `{command.strip()}`\n\n{table}\n"
    f"<!-- /bench:{section} -->"
)
text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
pattern = re.compile(rf"<!-- bench:{re.escape(section)} -->.*?<!-- /bench:{re.escape(section)} -->", re.S)
text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
open(doc, "w").write(text)
print(f"recorded in {doc}")
