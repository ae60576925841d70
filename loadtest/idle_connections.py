#!/usr/bin/env python3
"""Resident memory per idle keep-alive HTTP/1.1 client connection, for one
peer (a proxy already listening on 127.0.0.1:PORT); run by
loadtest/idle-connections.sh, which starts and stops the peers.

  idle_connections.py measure --peer NAME --port PORT --pid PID [--pid PID ...]
                              [--also-pid PID ...] [--connections 2000]
                              [--idle-wait 2] [--close-wait 3] [--metrics-url URL]
                              --out FILE.json
  idle_connections.py report DIR PEER...   # DIR/summary.md from DIR/PEER.json

measure: warm-up (requests on a few keep-alive connections, then closed);
memory of the --pid processes (summed: VmRSS, RssAnon, RssFile and Threads
from /proc/PID/status, Pss and Pss_Anon from /proc/PID/smaps_rollup when
readable); N connections opened one after another, each with one
`GET / HTTP/1.1` whose response is read to its end (Content-Length or
chunked) and then left open and idle; after --idle-wait seconds the memory
again; all closed, then waited for until the peer's processes hold none of
them (20 s at most) and at least --close-wait seconds since the close; the
memory once more. --also-pid processes are read and recorded, not summed
(nginx's master). The peer's client connections are counted exactly: its
processes' socket descriptors whose /proc/net/tcp entry has the peer's port
as local port and is not listening.

--concurrency K opens K connections at a time and sends their K requests
together (default 1: one request in flight, so a proxy keeps one upstream
connection and the growth is the idle client connections' alone). After the
last reading, --nudge requests on one connection and the memory once more
(an allocator may give memory back only on later allocations). The report
judges the issue's target: at most 8 KiB per idle connection, and at most
1 KiB per former connection still held after the close.

Fails (exit 1) when a response is not a framed 200 that keeps the connection
open, when the peer does not hold all N connections while they are idle,
when a connection was closed by the peer while idle, or when the RSS did not
grow. Python standard library only; loopback only; every wait is bounded.
"""

import argparse
import json
import os
import select
import socket
import sys
import time
import urllib.request

STATUS_KEYS = ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM")
ROLLUP_KEYS = ("Pss", "Pss_Anon")


class Failure(Exception):
    """A measurement that cannot be trusted."""


def log(message):
    print(f"[{time.strftime('%H:%M:%S', time.gmtime())}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ memory
def memory_of(pid):
    """kB figures of one process (all its threads share them), and Threads."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in STATUS_KEYS:
                out[key] = int(value.split()[0])
            elif key == "Threads":
                out[key] = int(value)
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ROLLUP_KEYS:
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def memory(pids):
    total = {}
    for pid in pids:
        for key, value in memory_of(pid).items():
            total[key] = total.get(key, 0) + value
    return total


def peer_connections(pids, port):
    """Client connections the processes hold: their sockets whose TCP entry
    has `port` as local port and is not a listener (ESTABLISHED, or
    CLOSE_WAIT once the client has closed and the peer has not yet)."""
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local_port = int(parts[1].rsplit(":", 1)[1], 16)
                    if local_port == port and parts[3] != "0A":
                        inodes.add(parts[9])
        except OSError:
            continue
    count = 0
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        for fd in os.listdir(fd_dir):
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                count += 1
    return count


def wait_connections(pids, port, at_most, timeout):
    """Polls until the peer holds at most `at_most` client connections;
    returns (count, seconds waited)."""
    started = time.monotonic()
    while True:
        count = peer_connections(pids, port)
        waited = time.monotonic() - started
        if count <= at_most or waited >= timeout:
            return count, waited
        time.sleep(0.1)


# ------------------------------------------------------------------ HTTP/1.1
class Reader:
    """Buffered reads from a socket, each bounded by one deadline."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.buf = b""

    def fill(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Failure("response timed out")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise Failure("response timed out") from None
        if not data:
            raise Failure("connection closed before the end of the response")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise Failure("response line longer than 64 KiB")
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exactly(self, n):
        while len(self.buf) < n:
            self.fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


def exchange(sock, request, timeout):
    """Sends one request and reads its response to the end; returns the
    body length. The response must be a 200 that keeps the connection."""
    deadline = time.monotonic() + timeout
    sock.settimeout(timeout)
    if request is not None:  # None: already sent
        sock.sendall(request)
    reader = Reader(sock, deadline)
    status_line = reader.line().decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or parts[0] != "HTTP/1.1":
        raise Failure(f"not an HTTP/1.1 status line: {status_line!r}")
    status = int(parts[1])
    headers = {}
    while True:
        line = reader.line()
        if not line:
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        headers[name] = f"{headers[name]}, {value.strip()}" if name in headers else value.strip()
    if status != 200:
        raise Failure(f"status {status} ({status_line!r})")
    if "close" in headers.get("connection", "").lower():
        raise Failure("the response closes the connection (Connection: close)")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        length = 0
        while True:
            size_line = reader.line().split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise Failure(f"bad chunk size {size_line!r}") from None
            if size == 0:
                while reader.line():  # trailers, up to the empty line
                    pass
                break
            reader.exactly(size)
            if reader.exactly(2) != b"\r\n":
                raise Failure("chunk not followed by CRLF")
            length += size
    elif "content-length" in headers:
        length = int(headers["content-length"])
        reader.exactly(length)
    else:
        raise Failure("a keep-alive response without Content-Length or chunked framing")
    if reader.buf:
        raise Failure(f"{len(reader.buf)} unexpected bytes after the response")
    return length


def connect(port, timeout):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def closed_by_peer(socks):
    """How many of the idle sockets the peer closed (or sent bytes on)."""
    poller = select.poll()
    events = select.POLLIN | getattr(select, "POLLRDHUP", 0)
    by_fd = {}
    for sock in socks:
        poller.register(sock, events)
        by_fd[sock.fileno()] = sock
    closed = unexpected = 0
    for fd, _ in poller.poll(0):
        try:
            data = by_fd[fd].recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            closed += 1
            continue
        if data:
            unexpected += 1
        else:
            closed += 1
    return closed, unexpected


def gateway_active(url):
    """edge-gateway's own count of client connections (metrics gauge)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("nginx_ingress_controller_nginx_process_connections{") and 'state="active"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


# ------------------------------------------------------------------ measure
def measure(args):
    pids, port, n = args.pid, args.port, args.connections
    request = (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: idle-connections\r\n"
        "Accept: */*\r\n\r\n"
    ).encode()
    result = {"peer": args.peer, "port": port, "pids": pids, "also_pids": args.also_pid,
              "connections": n, "concurrency": args.concurrency,
              "idle_wait_s": args.idle_wait, "close_wait_s": args.close_wait}

    # Warm-up: a few keep-alive connections, several requests each, closed.
    warm = [connect(port, args.timeout) for _ in range(args.warmup_connections)]
    body = 0
    for i in range(args.warmup):
        body = exchange(warm[i % len(warm)], request, args.timeout)
    for sock in warm:
        sock.close()
    left, _ = wait_connections(pids, port, 0, args.drain_timeout)
    if left:
        raise Failure(f"the peer still holds {left} warm-up connections after {args.drain_timeout} s")
    time.sleep(1)
    result["response_body_bytes"] = body

    before = memory(pids)
    result["before"] = before
    result["before_also"] = memory(args.also_pid) if args.also_pid else None
    baseline = peer_connections(pids, port)
    log(f"{args.peer}: RSS before {before['VmRSS'] / 1024:.1f} MiB, {baseline} client connections")

    # N idle keep-alive connections, opened one after another (one request
    # in flight at a time: the proxy keeps one upstream connection).
    socks = []
    started = time.monotonic()
    deadline = started + args.open_deadline
    try:
        while len(socks) < n:
            if time.monotonic() > deadline:
                raise Failure(f"opened only {len(socks)} of {n} connections in {args.open_deadline} s")
            batch = []
            for _ in range(min(args.concurrency, n - len(socks))):
                sock = connect(port, args.timeout)
                socks.append(sock)
                batch.append(sock)
            try:
                for sock in batch:
                    sock.sendall(request)
                for sock in batch:
                    exchange(sock, None, args.timeout)
            except (Failure, OSError) as e:
                raise Failure(f"connections {len(socks) - len(batch) + 1}..{len(socks)} of {n}: {e}") from None
        result["open_seconds"] = round(time.monotonic() - started, 2)
        log(f"{args.peer}: {n} connections open and idle in {result['open_seconds']} s")

        time.sleep(args.idle_wait)
        idle = memory(pids)
        held = peer_connections(pids, port)
        closed, unexpected = closed_by_peer(socks)
        result["idle"] = idle
        result["idle_also"] = memory(args.also_pid) if args.also_pid else None
        result["peer_connections_idle"] = held
        result["closed_by_peer_while_idle"] = closed
        if args.metrics_url:
            result["gateway_active_gauge_idle"] = gateway_active(args.metrics_url)
        log(f"{args.peer}: RSS with {n} idle {idle['VmRSS'] / 1024:.1f} MiB, "
            f"the peer holds {held} client connections")
        if closed or unexpected:
            raise Failure(f"{closed} connections closed by the peer and {unexpected} with "
                          f"unexpected bytes while idle")
        if held - baseline < n:
            raise Failure(f"the peer holds {held - baseline} of the {n} idle connections")
    finally:
        closed_at = time.monotonic()
        for sock in socks:
            sock.close()

    left, waited = wait_connections(pids, port, baseline, args.drain_timeout)
    result["peer_connections_after"] = left
    result["drained_seconds"] = round(waited, 2)
    rest = closed_at + args.close_wait - time.monotonic()
    if rest > 0:
        time.sleep(rest)
    after = memory(pids)
    result["after"] = after
    result["after_also"] = memory(args.also_pid) if args.also_pid else None
    if args.metrics_url:
        result["gateway_active_gauge_after"] = gateway_active(args.metrics_url)
    if left > baseline:
        log(f"warning: {args.peer} still holds {left - baseline} closed connections "
            f"{args.drain_timeout} s after the close")
    # Some allocators give memory back lazily, on their next allocations:
    # a few requests on one connection after the close, then once more.
    sock = connect(port, args.timeout)
    for _ in range(args.nudge):
        exchange(sock, request, args.timeout)
    sock.close()
    wait_connections(pids, port, baseline, args.drain_timeout)
    time.sleep(1)
    result["nudge_requests"] = args.nudge
    result["after_nudge"] = memory(pids)

    def per_conn(key):
        if key in idle and key in before:
            return round((idle[key] - before[key]) / n, 2)
        return None

    grown = idle["VmRSS"] - before["VmRSS"]
    result["kib_per_connection"] = {key: per_conn(key) for key in ("VmRSS", "RssAnon", "Pss", "Pss_Anon")}
    result["returned_percent"] = round(100 * (idle["VmRSS"] - after["VmRSS"]) / grown, 1) if grown > 0 else None
    nudged = result["after_nudge"]["VmRSS"]
    result["returned_after_nudge_percent"] = round(100 * (idle["VmRSS"] - nudged) / grown, 1) if grown > 0 else None
    log(f"{args.peer}: {result['kib_per_connection']['VmRSS']} KiB per idle connection, "
        f"RSS after close {after['VmRSS'] / 1024:.1f} MiB ({result['returned_percent']}% returned)")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    if grown <= 0:
        raise Failure(f"RSS did not grow with {n} idle connections ({grown} kB): nothing measured")


# ------------------------------------------------------------------ report
# The target: at most 8 KiB RSS per idle keep-alive connection,
# returned after they close, taken as at most 1 KiB per former connection
# still held after the close (a percentage alone would judge noise when the
# growth is small).
TARGET_KIB = 8.0
HELD_AFTER_KIB = 1.0


def report(out, peers):
    rows = []
    for peer in peers:
        try:
            with open(f"{out}/{peer}.json") as f:
                rows.append(json.load(f))
        except FileNotFoundError:
            print(f"warning: no result for {peer}", file=sys.stderr)
    mib = lambda kb: f"{kb / 1024:.1f}"  # noqa: E731
    lines = []
    try:
        with open(f"{out}/meta.txt") as f:
            lines += [f"- {line.rstrip()}" for line in f if line.strip()]
        lines.append("")
    except FileNotFoundError:
        pass
    n_label = "N"
    if rows and len({r["connections"] for r in rows}) == 1:
        n_label = f"{rows[0]['connections']:,}"
    lines += [
        f"| peer | connections | RSS before (MiB) | RSS with {n_label} idle (MiB) | KiB per idle connection "
        f"| RSS after close (MiB) | returned (%) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        returned = r["returned_percent"]
        lines.append(
            f"| {r['peer']} | {r['connections']:,} | {mib(r['before']['VmRSS'])} | {mib(r['idle']['VmRSS'])} "
            f"| {r['kib_per_connection']['VmRSS']:.1f} | {mib(r['after']['VmRSS'])} "
            f"| {'-' if returned is None else f'{returned:.0f}'} |")
    lines += [
        "",
        "| peer | measured | Pss KiB/conn | RssAnon KiB/conn | threads (before/idle/after) "
        "| held while idle | drained after close (s) | opened in (s) | in flight at a time "
        "| RSS after close + requests (MiB) | returned then (%) |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        k = r["kib_per_connection"]
        fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        threads = "/".join(str(r[s].get("Threads", "-")) for s in ("before", "idle", "after"))
        what = {"gateway": "the process (all threads)", "nginx": "the worker (master not summed)"}.get(
            r["peer"], f"pids {r['pids']}")
        lines.append(
            f"| {r['peer']} | {what} | {fmt(k.get('Pss'))} | {fmt(k.get('RssAnon'))} | {threads} "
            f"| {r['peer_connections_idle']:,} | {r['drained_seconds']} | {r['open_seconds']} "
            f"| {r.get('concurrency', 1)} | {mib(r['after_nudge']['VmRSS'])} ({r['nudge_requests']}) "
            f"| {fmt(r['returned_after_nudge_percent'])} |")
    lines.append("")
    for r in rows:
        per = r["kib_per_connection"]["VmRSS"]
        held = (r["after"]["VmRSS"] - r["before"]["VmRSS"]) / r["connections"]
        met = per <= TARGET_KIB and held <= HELD_AFTER_KIB
        lines.append(
            f"- {r['peer']}: {per:.1f} KiB per idle connection, {held:.1f} KiB per former connection "
            f"still held after the close; target (≤ {TARGET_KIB:g} KiB, ≤ {HELD_AFTER_KIB:g} KiB held "
            f"after): {'**met**' if met else '**not met**'}")
        if r.get("peer_connections_after", 0):
            lines.append(f"  (warning: {r['peer_connections_after']} connections still held after the close)")
        also = r.get("idle_also")
        if also:
            lines.append(f"  ({r['peer']} master, not summed: RSS {mib(r['before_also']['VmRSS'])} → "
                         f"{mib(also['VmRSS'])} → {mib(r['after_also']['VmRSS'])} MiB)")
    text = "\n".join(lines) + "\n"
    with open(f"{out}/summary.md", "w") as f:
        f.write(text)
    print(text, end="")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--peer", required=True)
    m.add_argument("--port", type=int, required=True)
    m.add_argument("--pid", type=int, action="append", required=True, help="summed")
    m.add_argument("--also-pid", type=int, action="append", default=[], help="recorded, not summed")
    m.add_argument("--connections", type=int, default=2000)
    m.add_argument("--warmup", type=int, default=200, help="warm-up requests")
    m.add_argument("--warmup-connections", type=int, default=10)
    m.add_argument("--idle-wait", type=float, default=2.0)
    m.add_argument("--close-wait", type=float, default=3.0)
    m.add_argument("--concurrency", type=int, default=1,
                   help="connections opened, and requests in flight, at a time")
    m.add_argument("--nudge", type=int, default=100, help="requests after the close, then RSS once more")
    m.add_argument("--timeout", type=float, default=5.0, help="per connect and per response")
    m.add_argument("--open-deadline", type=float, default=120.0, help="for opening all N")
    m.add_argument("--drain-timeout", type=float, default=20.0)
    m.add_argument("--metrics-url")
    m.add_argument("--out", required=True)
    r = sub.add_parser("report")
    r.add_argument("dir")
    r.add_argument("peers", nargs="+")
    args = parser.parse_args()
    if args.command == "report":
        report(args.dir, args.peers)
        return
    try:
        measure(args)
    except (Failure, OSError) as e:
        print(f"{args.peer}: measurement failed: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
