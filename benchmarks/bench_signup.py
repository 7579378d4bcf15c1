"""Benchmark of `newsletter serve` under load (issue 19), with a kill -9 in the middle.

    python benchmarks/bench_signup.py [--signups 500] [--clients 50]

The server runs as `newsletter serve` in a copy of a made-up publication without its
list, its emails going to the SendGrid double (a process of its own). Then:
1. `--signups` sign-ups are posted by `--clients` concurrent clients (keep-alive
   connections), every answer's latency recorded;
2. each is confirmed (POST /confirm/<token>, the token signed here with the same
   secret), as concurrently; half-way through, the server is killed with SIGKILL and
   started again, and the confirmations it did not answer are posted again;
3. `newsletter subscribers sync` pulls the changes into the list.
Targets: every request answered, the sign-ups' p99 under 200 ms, every confirmation the
server answered (before the kill or after) in the list after sync. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

from harness import NEWSLETTER, child_env, double_process, figure, machine, make_publication

SECRET = "bench-secret-0123456789abcdef0123456789"
P99_TARGET_MS = 200.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(folder: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([*NEWSLETTER, "serve", "--port", str(port)], cwd=folder, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until /health answers (the process imports, then listens)
        if server.poll() is not None:
            raise SystemExit("newsletter serve stopped at start")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.05)
    raise SystemExit("newsletter serve did not answer within 60 s")


class Client:
    """One keep-alive connection per thread; a request that fails is reported, not retried."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def post(self, path: str, form: dict[str, str]) -> tuple[int, float]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        started = time.perf_counter()
        try:
            conn.request("POST", path, body=urlencode(form),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            response = conn.getresponse()
            response.read()
            return response.status, time.perf_counter() - started
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            return 0, time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signups", type=int, default=500)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    from newsletter.signup.tokens import CONFIRM, Signer

    print(f"  {machine()}; {args.signups} sign-ups from {args.clients} concurrent clients")
    signer = Signer(SECRET)
    emails = [f"reader.{i:05d}@bench-readers.internal" for i in range(args.signups)]
    with tempfile.TemporaryDirectory(prefix="bench-signup-") as tmp, double_process() as (url, api_key):
        editor = make_publication(Path(tmp), 0, "editor")
        port = free_port()
        with open(editor / "newsletter.yaml", "a", encoding="utf-8") as config:
            config.write(f"signup:\n  url: http://127.0.0.1:{port}\n  per_ip_per_hour: {args.signups * 10}\n")
        server_copy = Path(tmp) / "server"
        shutil.copytree(editor, server_copy, ignore=shutil.ignore_patterns("subscribers", "sent", "build"))
        env = child_env(NEWSLETTER_SENDGRID_URL=url, SENDGRID_API_KEY=api_key, NEWSLETTER_SECRET=SECRET)
        server = start_server(server_copy, port, env)
        client = Client(port)
        try:
            with ThreadPoolExecutor(args.clients) as pool:
                signups = list(pool.map(lambda e: client.post("/subscribe", {"email": e}), emails))
            answered = sum(1 for status, _ in signups if status == 200)
            latencies = [seconds * 1000 for status, seconds in signups if status == 200]

            confirmed: set[str] = set()
            lock = threading.Lock()
            killed = threading.Event()
            half = len(emails) // 2

            def confirm(email: str) -> None:
                status, _ = client.post("/confirm/" + signer.sign(CONFIRM, email, "main"), {})
                if status == 200:
                    with lock:
                        confirmed.add(email)
                        if len(confirmed) >= half and not killed.is_set():
                            killed.set()
                            server.send_signal(signal.SIGKILL)  # mid-flight: others are being answered

            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(confirm, emails))
            server.wait()
            before_kill = set(confirmed)
            server = start_server(server_copy, port, env)
            client = Client(port)
            with ThreadPoolExecutor(args.clients) as pool:  # those the killed server never answered
                list(pool.map(confirm, [e for e in emails if e not in before_kill]))
            sync = subprocess.run([*NEWSLETTER, "subscribers", "sync"], cwd=editor, env=env, capture_output=True,
                                  text=True)
            if sync.returncode != 0:
                raise SystemExit(f"sync failed: {sync.stderr.strip()}")
        finally:
            server.terminate()
            server.wait()
        with open(editor / "subscribers" / "main.csv", encoding="utf-8", newline="") as handle:
            listed = {row["email"] for row in csv.DictReader(handle) if row["status"] == "subscribed"}
    lost = before_kill - listed
    print(f"  sign-ups answered {answered}/{len(emails)}; p50 {percentile(latencies, 0.5):.0f} ms, "
          f"p99 {percentile(latencies, 0.99):.0f} ms, slowest {max(latencies):.0f} ms; over 200 ms: "
          f"{sum(1 for ms in latencies if ms > 200)}, of which among the first {args.clients}: "
          f"{sum(1 for ms in latencies[:args.clients] if ms > 200)}")
    print(f"  confirmations answered before the kill -9: {len(before_kill)}; after the restart: "
          f"{len(confirmed) - len(before_kill)}; subscribed in the list after sync: {len(listed)}")
    figure("sign-ups answered", f"{answered}/{len(emails)}", "all", answered == len(emails))
    p99 = percentile(latencies, 0.99)
    figure("sign-ups' p99 latency", f"{p99:.0f} ms", f"< {P99_TARGET_MS:.0f} ms", p99 < P99_TARGET_MS)
    figure("confirmed before the kill -9, lost", f"{len(lost)}", "0", not lost)
    figure("confirmed, in the list after sync", f"{len(confirmed & listed)}/{len(confirmed)}", "all",
           confirmed <= listed)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
