"""Shared benchmark helpers: run a command, measure wall time and the peak resident memory of its
whole process tree (sampled from /proc, so a JVM started by PySpark counts too)."""
import ast
import os
import re
import subprocess
import urllib.request
import tempfile
import threading
import socket
import time


def _tree_rss_kib(root):
    children = {}
    rss = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            ppid = int(parts[1])
            pages = int(parts[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(pid))
        rss[int(pid)] = pages * (os.sysconf("SC_PAGE_SIZE") // 1024)
    total, stack = 0, [root]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def measure(cmd, env=None, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=None):
    """Runs cmd; returns dict(seconds, peak_mib, code, stdout)."""
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=env, cwd=cwd, text=True)
    # Drain stdout while the child runs: one that prints more than a pipe holds would block.
    chunks = []
    reader = threading.Thread(target=lambda: chunks.append(p.stdout.read()) if p.stdout else None)
    reader.start()
    peak = 0
    while p.poll() is None:
        peak = max(peak, _tree_rss_kib(p.pid))
        time.sleep(0.05)
    reader.join()
    out = "".join(chunks)
    return dict(seconds=time.time() - t0, peak_mib=peak / 1024, code=p.returncode, stdout=out)


def table(rows, cols):
    widths = [max(len(str(c)), *(len(str(r.get(c, ""))) for r in rows)) for c in cols]
    line = "  ".join(str(c).ljust(w) for c, w in zip(cols, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(cols, widths)))
    return "\n".join(out)


def peer_dict(line):
    """The dict a peer prints; numpy 2 scalars print as `np.float64(0.93)`, which is unwrapped."""
    return ast.literal_eval(re.sub(r"np\.\w+\(([^()]*)\)", r"\1", line))


def end_group(p, timeout=30):
    """Ends a process started with `start_new_session=True` and every process of its group
    (an `mlflow server` leaves uvicorn workers, job runners and huey consumers otherwise)."""
    import signal
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()
    return p.returncode


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def mlflow_server(workers, mlflow):
    """Starts `mlflow server` (sqlite, on loopback) in a process group of its own; returns (process, uri)."""
    d = tempfile.mkdtemp()
    port = free_port()
    p = subprocess.Popen([str(mlflow), "server", "--backend-store-uri", f"sqlite:///{d}/m.db",
                          "--artifacts-destination", f"{d}/a", "--host", "127.0.0.1", "--port", str(port),
                          "--workers", str(workers)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    for _ in range(180):
        try:
            if urllib.request.urlopen(f"{uri}/health", timeout=1).status == 200:
                return p, uri
        except OSError:
            time.sleep(0.5)
    end_group(p)
    raise SystemExit("mlflow server did not start")
