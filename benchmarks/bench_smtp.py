"""A send through SMTP (`provider: smtp`) against a local sink, beside a plain smtplib reference and mailmerge.

    python benchmarks/bench_smtp.py [--quick] [--rows N] [--memory-rows N] [--sink minimal|aiosmtpd]

The sink is a minimal SMTP server in a process of its own on 127.0.0.1 (asyncio; it reads
each message's DATA whole, to its final dot), taking every message and keeping none; it
shares the machine's two cores with whoever sends. Three senders:

- ours: `newsletter send issue-1 --yes` with `provider: smtp` at default settings
  (4 connections), the ledger written as for any send (each message recorded before
  DATA and its answer after);
- the reference, in the same run: smtplib over the same 4 connections, each message
  made by string substitution into MIME text built once from our rendered email (no
  ledger, no retries, no checks): the least a sender must do;
- mailmerge (PyPI `mailmerge`, in its own venv as bench_mailmerge.py installs it),
  sending the same email to the same sink, on its first 1,000 rows scaled.

Targets (issue 18): no slower than 1.2x the reference; at least 15x mailmerge's
messages a second; under 150 MB at the peak for a list of 100,000 (`--memory-rows`;
--quick measures 20,000 and says so).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ISSUE, NEWSLETTER, REPO, Run, child_env, figure, machine, make_publication  # noqa: E402

CONNECTIONS = 4
MAILMERGE_ROWS = 1_000

# The sink: SMTP as a mail server speaks it, and as little work as it can do, so that the
# figures measure the senders. aiosmtpd (the tests' server) reads DATA a line at a time in
# Python, ~2 ms a message here: it capped every sender at 400-460 messages a second, the
# reference at 9x mailmerge, and measured the sink. `--sink aiosmtpd` runs that one instead.
SINK = """
import asyncio, sys

async def session(reader, writer):
    writer.write(b"220 sink ESMTP\\r\\n")
    while True:
        line = await reader.readline()
        verb = line[:4].upper()
        if not line or verb == b"QUIT":
            writer.write(b"221 Bye\\r\\n")
            break
        if verb == b"EHLO":
            writer.write(b"250-sink\\r\\n250-8BITMIME\\r\\n250 SMTPUTF8\\r\\n")
        elif verb == b"DATA":
            writer.write(b"354 End data with <CR><LF>.<CR><LF>\\r\\n")
            await writer.drain()
            await reader.readuntil(b"\\r\\n.\\r\\n")
            writer.write(b"250 2.0.0 Ok: queued\\r\\n")
        else:  # HELO, MAIL, RCPT, RSET, NOOP
            writer.write(b"250 OK\\r\\n")
        await writer.drain()
    await writer.drain()
    writer.close()

async def main():
    server = await asyncio.start_server(session, "127.0.0.1", 0, limit=1 << 22)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""

AIOSMTPD_SINK = """
import asyncio, sys
from aiosmtpd.controller import Controller

class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 Ok: queued"

class Free(Controller):
    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()

controller = Free(Sink(), hostname="127.0.0.1", port=0, enable_SMTPUTF8=True, data_size_limit=0)
controller.start()
print(controller.port, flush=True)
sys.stdin.read()
controller.stop()
"""

REFERENCE = """
import smtplib, sys, threading, csv
from concurrent.futures import ThreadPoolExecutor
port, template_path, list_path, connections = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
template = open(template_path, encoding="utf-8", newline="").read()
with open(list_path, encoding="utf-8", newline="") as handle:
    rows = list(csv.DictReader(handle))
local = threading.local()

def send(row):
    smtp = getattr(local, "smtp", None)
    if smtp is None:
        smtp = local.smtp = smtplib.SMTP("127.0.0.1", port)
    message = (template.replace("%%EMAIL%%", row["email"]).replace("%%FIRST_NAME%%", row["first_name"] or "friend"))
    smtp.sendmail("letters@riverside-writers-circle.internal", [row["email"]], message.encode("utf-8"))

with ThreadPoolExecutor(connections) as pool:
    list(pool.map(send, rows, chunksize=64))
"""


def sink(code: str = SINK) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = int(process.stdout.readline())  # type: ignore[union-attr]
    return process, port


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[Run, float]:
    """Wall time, peak memory and CPU seconds (user + system) of a child run to its end."""
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    error = process.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(args)} failed:\n{error.decode(errors='replace')[-3000:]}")
    return Run(seconds, usage.ru_maxrss / 1024), usage.ru_utime + usage.ru_stime


def use_sink(root: Path, port: int) -> None:
    config = root / "newsletter.yaml"
    config.write_text(config.read_text(encoding="utf-8") + f"provider: smtp\nsmtp:\n  host: 127.0.0.1\n"
                      f"  port: {port}\n  security: none\n", encoding="utf-8")


def reference_template(root: Path) -> str:
    """Our rendered email as MIME text with two placeholders: what the reference fills per message.

    Written out by hand, as a straightforward sender would: 8bit parts (nothing encoded per
    message), the HTML's lines kept under SMTP's 998 octets by breaks between tags and words.
    """
    from newsletter import merge
    from newsletter.build import render_and_check
    from newsletter.config import load_settings

    settings = load_settings(root)
    email, _ = render_and_check(settings, ISSUE)
    values = {"email": "%%EMAIL%%", "first_name": "%%FIRST_NAME%%",
              "unsubscribe_url": settings.unsubscribe_url.replace("{email}", "%%EMAIL%%")}
    html = "\n".join(line.replace(" ", "\n") if len(line.encode()) > 900 else line
                     for line in merge.fill(email.html, values).replace("><", ">\n<").splitlines())
    text = (f"From: {settings.sender.name} <{settings.sender.email}>\nTo: %%EMAIL%%\nSubject: {email.subject}\n"
            "MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"bench-boundary\"\n\n"
            "--bench-boundary\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
            + merge.fill(email.text, values) +
            "\n--bench-boundary\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
            + html + "\n--bench-boundary--\n")
    assert max(len(line.encode()) for line in text.split("\n")) < 998
    return text.replace("\n", "\r\n")  # smtplib sends bytes as they are: SMTP's line ends, once


def mailmerge_run(root: Path, port: int, env: dict[str, str], tmp: Path) -> float | None:
    """mailmerge's messages a second to the sink on its first MAILMERGE_ROWS rows, or None."""
    from bench_mailmerge import install_mailmerge, mailmerge_template

    executable, why_not = install_mailmerge()
    if executable is None:
        print(f"  mailmerge: {why_not}")
        return None
    template = tmp / "mailmerge_template.txt"
    template.write_text(mailmerge_template(root), encoding="utf-8")
    config = tmp / "mailmerge_server.conf"
    config.write_text(f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nsecurity = Never\nratelimit = 0\n")
    args = [str(executable), "--no-dry-run", "--no-limit", "--output-format", "raw", "--template", str(template),
            "--database", str(tmp / "mailmerge.csv"), "--config", str(config)]
    with open(root / "subscribers" / "main.csv", encoding="utf-8") as source:
        head = [next(source) for _ in range(MAILMERGE_ROWS + 1)]
    (tmp / "mailmerge.csv").write_text("".join(head), encoding="utf-8")
    run, _ = timed(args, tmp, env)
    return MAILMERGE_ROWS / run.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 messages, memory on 20,000 (indicative)")
    parser.add_argument("--rows", type=int, default=None, help="messages in the timed send (default 10,000)")
    parser.add_argument("--memory-rows", type=int, default=None, help="the list whose peak memory is held to 150 MB")
    parser.add_argument("--sink", choices=("minimal", "aiosmtpd"), default="minimal",
                        help="the server that takes the messages (default: a minimal asyncio one)")
    args = parser.parse_args()
    rows = args.rows or (2_000 if args.quick else 10_000)
    memory_rows = args.memory_rows or (20_000 if args.quick else 100_000)
    print(f"  {machine()}; {rows:,} messages, {CONNECTIONS} connections, the {args.sink} sink")
    env = child_env()
    with tempfile.TemporaryDirectory(prefix="bench-smtp-") as folder:
        tmp = Path(folder)
        server, port = sink(SINK if args.sink == "minimal" else AIOSMTPD_SINK)
        try:
            root = make_publication(tmp, rows)
            use_sink(root, port)
            subprocess.run([*NEWSLETTER, "build", ISSUE], cwd=root, env=env, check=True, capture_output=True)
            ours, our_cpu = timed([*NEWSLETTER, "send", ISSUE, "--yes"], root, env)
            sys.path.insert(0, str(REPO))
            template = tmp / "reference.eml"
            template.write_bytes(reference_template(root).encode("utf-8"))
            reference, reference_cpu = timed(
                [sys.executable, "-c", REFERENCE, str(port), str(template), str(root / "subscribers" / "main.csv"),
                 str(CONNECTIONS)], root, env)
            theirs = mailmerge_run(root, port, env, tmp)
            big = make_publication(tmp, memory_rows, name="memory")
            use_sink(big, port)
            subprocess.run([*NEWSLETTER, "build", ISSUE], cwd=big, env=env, check=True, capture_output=True)
            memory, _ = timed([*NEWSLETTER, "send", ISSUE, "--yes"], big, env)
        finally:
            server.communicate("")
    ours_rate, reference_rate = rows / ours.seconds, rows / reference.seconds
    print(f"  ours:      {ours.seconds:6.2f} s, {ours_rate:7,.0f} messages/s, {our_cpu:5.2f} CPU s, "
          f"{ours.peak_mb:5.0f} MB")
    print(f"  reference: {reference.seconds:6.2f} s, {reference_rate:7,.0f} messages/s, {reference_cpu:5.2f} CPU s, "
          f"{reference.peak_mb:5.0f} MB")
    ratio = ours.seconds / reference.seconds
    figure("smtp: our time / the smtplib reference's", f"{ratio:.2f}x", "<= 1.2x", ratio <= 1.2, args.quick)
    # The same in CPU time (user and system): the work each does, steadier than wall time on a
    # machine others load too (there the send's threads and its ledger's fsyncs wait longer).
    cpu_ratio = our_cpu / reference_cpu
    figure("smtp: the same in CPU time", f"{cpu_ratio:.2f}x", "<= 1.2x", cpu_ratio <= 1.2, args.quick)
    if theirs is None:
        figure("smtp: ours/mailmerge messages/s", "mailmerge could not be installed", ">= 15x", None)
    else:
        print(f"  mailmerge: {theirs:7,.0f} messages/s on its first {MAILMERGE_ROWS:,} rows "
              f"(the reference: {reference_rate / theirs:.1f}x that)")
        figure("smtp: ours/mailmerge messages/s", f"{ours_rate / theirs:.1f}x", ">= 15x",
               ours_rate / theirs >= 15, args.quick)
    label = f"smtp: peak memory, a send to {memory_rows:,}"
    figure(label, f"{memory.peak_mb:.0f} MB ({memory_rows / memory.seconds:,.0f} messages/s)", "< 150 MB",
           memory.peak_mb < 150 if memory_rows >= 100_000 else None if not args.quick else memory.peak_mb < 150,
           args.quick)


if __name__ == "__main__":
    main()
