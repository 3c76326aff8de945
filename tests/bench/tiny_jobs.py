#!/usr/bin/env python3
"""Round trip of tiny jobs through the control API: N sequential 1-sample pi jobs, each
submitted and then waited for (long poll), over one keep-alive HTTP connection on the Unix
socket. Prints the median, p90 and p99 of submit-to-result times.

Usage: MARMOT_SOCKET=/path/to/marmotd.sock tests/bench/tiny_jobs.py [N]   (default 1000)
Start a cluster first, e.g. `marmotd local --workers 2`.
"""
import http.client
import json
import os
import socket
import statistics
import sys
import time


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def call(conn, method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    reply = conn.getresponse()
    data = reply.read()
    if reply.status != 200:
        sys.exit(f"{method} {path}: {reply.status} {data.decode(errors='replace')}")
    return json.loads(data)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    conn = UnixConnection(os.environ["MARMOT_SOCKET"])
    job = json.dumps({"pi": {"samples": 1, "seed": 1}})
    times = []
    for _ in range(n):
        start = time.perf_counter()
        view = call(conn, "POST", "/v1/jobs", job)
        while view["state"] == "running":
            view = call(conn, "GET", f"/v1/jobs/{view['id']}?wait_ms=1000")
        times.append(time.perf_counter() - start)
        if view["state"] != "done":
            sys.exit(f"job {view['id']} ended {view['state']}: {view.get('error')}")
    times.sort()
    ms = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1e3
    print(f"{n} tiny jobs: median {statistics.median(times) * 1e3:.3f} ms, "
          f"p90 {ms(0.9):.3f} ms, p99 {ms(0.99):.3f} ms")


if __name__ == "__main__":
    main()
