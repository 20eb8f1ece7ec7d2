#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks examples/http_hash.c in each mode: correct hashes under concurrent
keep-alive clients, 400/404/431 for bad requests without a crash, and a clean
exit (status 0) on SIGTERM; the same with two loops sharing the pool; and
cluster mode: a child killed under load is restarted and the others keep
serving. usage: http_hash_test.py path/to/wpool-http-hash"""
import os
import time
import hashlib
import http.client
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse

ROUNDS = 50
failures = []


def expect(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def want_hash(text):
    h = hashlib.sha256(text.encode()).digest()
    for _ in range(ROUNDS - 1):
        h = hashlib.sha256(h).digest()
    return h.hex() + "\n"


def raw(port, data):
    """Sends raw bytes, returns the status code of the reply (0 if none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        reply = b""
        try:
            while b"\r\n" not in reply:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except socket.timeout:
            pass
    parts = reply.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def client(port, texts, results):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for t in texts:  # keep-alive: one connection, many requests
        conn.request("GET", "/hash?text=" + urllib.parse.quote(t))
        r = conn.getresponse()
        results.append((t, r.status, r.read().decode()))
    conn.close()


def stop_server(srv):
    """SIGTERM, then the exit status ("hung" if it does not exit in 60 s)."""
    srv.send_signal(signal.SIGTERM)
    try:
        return srv.wait(timeout=60)
    except subprocess.TimeoutExpired:
        srv.kill()
        return "hung"


def check_mode(exe, mode, extra=()):
    srv = subprocess.Popen([exe, "--mode", mode, "--port", "0", "--rounds", str(ROUNDS),
                            *extra], stdout=subprocess.PIPE, text=True)
    mode = " ".join([mode, *extra])
    line = srv.stdout.readline()
    expect(line.startswith("listening on 127.0.0.1:"), f"{mode}: banner {line!r}")
    port = int(line.split(":")[1].split()[0])
    try:
        results = []
        texts = [[f"hello {c}-{i} ünïcödé &=?+%" for i in range(100)] for c in range(4)]
        threads = [threading.Thread(target=client, args=(port, t, results)) for t in texts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        expect(len(results) == 400, f"{mode}: {len(results)} answers of 400")
        bad = [r for r in results if r[1] != 200 or r[2] != want_hash(r[0])]
        expect(not bad, f"{mode}: {len(bad)} wrong answers, e.g. {bad[:1]}")
        cases = [
            (b"GET /hash HTTP/1.1\r\n\r\n", 400),
            (b"GET /hash?foo=1 HTTP/1.1\r\n\r\n", 400),
            (b"GET /hash?text=%zz HTTP/1.1\r\n\r\n", 400),
            (b"GET /hash?text=" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n", 400),
            (b"POST /hash?text=a HTTP/1.1\r\n\r\n", 400),
            (b"GET /other?text=a HTTP/1.1\r\n\r\n", 404),
            (b"\x00\x01\x02garbage\r\n\r\n", 400),
            (b"GET /hash?text=a\r\n\r\n", 400),
            (b"GET /hash?text=a HTTP/1.1\r\nX: " + b"y" * 9000 + b"\r\n\r\n", 431),
        ]
        for data, code in cases:
            got = raw(port, data)
            expect(got == code, f"{mode}: {data[:40]!r} -> {got}, want {code}")
        got = raw(port, b"GET /ping HTTP/1.1\r\n\r\n")
        expect(got == 200, f"{mode}: GET /ping -> {got}, want 200")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for t in ["quick", "q ünï &"]:  # one round of the hash, on the pool
            conn.request("GET", "/quick?text=" + urllib.parse.quote(t))
            r = conn.getresponse()
            body = r.read().decode()
            want = hashlib.sha256(t.encode()).hexdigest() + "\n"
            expect(r.status == 200 and body == want, f"{mode}: /quick {t!r} -> {r.status} {body!r}")
        conn.close()
        got = raw(port, b"GET /quick HTTP/1.1\r\n\r\n")
        expect(got == 400, f"{mode}: GET /quick without text -> {got}, want 400")
        results = []
        client(port, ["still alive"], results)  # no crash after all that
        expect(results and results[0][1] == 200 and results[0][2] == want_hash("still alive"),
               f"{mode}: server broken after bad requests")
    finally:
        rc = stop_server(srv)
    expect(rc == 0, f"{mode}: exit status {rc} after SIGTERM")
    print(f"{mode}: ok" if not failures else f"{mode}: done")


def check_cluster(exe):
    """Two processes under a supervisor; one is killed while clients run."""
    srv = subprocess.Popen([exe, "--mode", "wpool", "--port", "0", "--rounds", str(ROUNDS),
                            "--processes", "2"], stdout=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(srv.stdout.readline, "")))
    reader.start()

    def wait_for(pred, what, limit=20.0):
        """Until pred(output lines so far) holds."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if pred(list(lines)):
                return True
            time.sleep(0.05)
        expect(False, f"cluster: no {what} after {limit} s; output {lines!r}")
        return False

    try:
        if not wait_for(lambda ls: sum("mode=wpool" in x for x in ls) >= 2, "two children"):
            return
        port = int(lines[0].split(":")[1].split()[0])
        kids = [int(l.split("pid=")[1]) for l in lines if l.startswith("child ")]
        expect(len(kids) == 2, f"cluster: children {kids}")
        stop = threading.Event()
        errors = []

        def load():
            while not stop.is_set():
                try:
                    r = []
                    client(port, ["load"] * 5, r)
                except OSError:
                    errors.append(1)  # a connection the killed child held: allowed

        loaders = [threading.Thread(target=load) for _ in range(2)]
        for t in loaders:
            t.start()
        time.sleep(0.3)
        os.kill(kids[0], signal.SIGKILL)
        wait_for(lambda ls: any("restarted as" in x for x in ls), "restart")
        stop.set()
        for t in loaders:
            t.join()
        results = []
        for i in range(4):
            client(port, [f"after {i}"] * 10, results)
        bad = [r for r in results if r[1] != 200 or r[2] != want_hash(r[0])]
        expect(len(results) == 40 and not bad,
               f"cluster: {len(bad)} wrong answers of {len(results)} after the restart")
    finally:
        rc = stop_server(srv)
        reader.join()
    expect(rc == 0, f"cluster: supervisor exit status {rc} after SIGTERM")
    print("cluster: ok" if not failures else "cluster: done")


def main():
    exe = sys.argv[1]
    for mode in ("inline", "uv", "wpool"):
        check_mode(exe, mode)
    for mode in ("uv", "wpool"):
        check_mode(exe, mode, ("--loops", "2"))
    check_mode(exe, "wpool", ("--quick-reserved", "0", "--threads", "2"))
    check_cluster(exe)
    print("http-hash:", "all checks passed" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
