"""ETL benchmark: recflow vs the peers (polars-python, PySpark local[2]) on one Electronics-size
generated file, in one run. Prints wall time, peak memory and ratios.

usage: bench_etl.py [--users N --items M --ratings R] (defaults: Electronics 5-core size)"""
import argparse
import ast
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import measure, peer_dict, table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT.parent / "shared" / "peers"
ap = argparse.ArgumentParser()
ap.add_argument("--users", type=int, default=192_403)
ap.add_argument("--items", type=int, default=63_001)
ap.add_argument("--ratings", type=int, default=1_689_188)
ap.add_argument("--out", default=str(ROOT / "bench-out"))
a = ap.parse_args()
out = Path(a.out)
out.mkdir(parents=True, exist_ok=True)
bin_ = ROOT / "target" / "release" / "recflow"
src = out / f"reviews_{a.users}x{a.items}x{a.ratings}.json.gz"
if not src.exists():
    r = measure([str(bin_), "generate", "--out", str(src), "--users", str(a.users), "--items", str(a.items),
                 "--ratings", str(a.ratings), "--seed", "7", "--no-progress"])
    assert r["code"] == 0, r
    print(f"generated {src.name}: {src.stat().st_size / 2**20:.0f} MiB gzipped in {r['seconds']:.1f}s")

rows = []
r = measure([str(bin_), "etl", "--input", str(src), "--output", str(out / "recflow"), "--min-interactions", "5",
             "--no-progress", "--json"])
assert r["code"] == 0, r
import json  # noqa: E402

s = json.loads(r["stdout"])
rows.append(dict(system="recflow", seconds=round(r["seconds"], 2), peak_mib=round(r["peak_mib"]),
                 ratings=s["ratings"], users=s["users"], items=s["items"]))

py = ROOT / ".venv-peers" / "bin" / "python"
for name, script in [("polars-python", "peer_etl_polars.py"), ("spark-local2", "peer_etl_spark.py")]:
    if not py.exists():
        print(f"skipping {name}: .venv-peers missing (make venv-peers)")
        continue
    r = measure([str(py), str(PEERS / script), str(src), str(out / name), "5"])
    if r["code"] != 0:
        print(f"skipping {name}: exit {r['code']}")
        continue
    d = peer_dict(r["stdout"].strip().splitlines()[-1])
    rows.append(dict(system=name, seconds=round(r["seconds"], 2), peak_mib=round(r["peak_mib"]),
                     ratings=d.get("ratings"), users=d.get("users", ""), items=d.get("items", ""),
                     inner_seconds=d.get("seconds")))

base = rows[0]
for row in rows:
    row["time_vs_recflow"] = f"{row['seconds'] / base['seconds']:.1f}x"
print(f"\nETL of {src.name} ({src.stat().st_size / 2**20:.0f} MiB), 5-core, 2 cores")
print(table(rows, ["system", "seconds", "inner_seconds", "peak_mib", "ratings", "users", "items", "time_vs_recflow"]))
print("(seconds: whole process wall time incl. start-up; inner_seconds: the peer's own timer; "
      "peak_mib: peak RSS of the process tree)")
