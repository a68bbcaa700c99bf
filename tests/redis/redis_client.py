#!/usr/bin/env python3
"""Drives the Redis gateway with a real Redis client library (python3-redis), for
tests/redis_cluster_test.cc.

  check PORT               commands and their answers, through one connection and pipelines
  incr PORT KEY T N        T threads each INCR KEY N times; prints the final value
  load FILE STOP PORT...   pipelined SETs of 16 until the file STOP exists; every acknowledged
                           key is appended to FILE ("key value" per line) once its pipeline
                           answered; an error moves on to the next port
  verify FILE PORT         every key of FILE holds its value; prints "verified N"
Exit 0 when everything held, 1 with a message naming what did not."""
import os
import sys
import threading
import time

import redis


def fail(message):
    print("FAIL: " + message, flush=True)
    sys.exit(1)


def expect(what, got, wanted):
    if got != wanted:
        fail("%s: got %r, wanted %r" % (what, got, wanted))


def check(port):
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
    expect("PING", r.ping(), True)
    expect("SET", r.set("py:a", "1"), True)
    expect("GET", r.get("py:a"), b"1")
    expect("SET NX on an existing key", r.set("py:a", "2", nx=True), None)
    expect("SET XX on a missing key", r.set("py:missing", "2", xx=True), None)
    expect("SET GET", r.set("py:a", "3", get=True), b"1")
    expect("INCR", r.incr("py:n"), 1)
    expect("INCRBY", r.incrby("py:n", 41), 42)
    expect("DECRBY", r.decrby("py:n", 2), 40)
    expect("SET text", r.set("py:text", "abc"), True)
    try:
        r.incr("py:text")
        fail("INCR of a non-integer answered")
    except redis.ResponseError as error:
        expect("INCR error", str(error), "value is not an integer or out of range")
    expect("MSET", r.mset({"py:m1": "x", "py:m2": "y"}), True)
    expect("MGET", r.mget("py:m1", "py:m2", "py:none"), [b"x", b"y", None])
    expect("MSETNX with one key present", r.msetnx({"py:m1": "z", "py:m3": "z"}), False)
    expect("MSETNX wrote nothing", r.exists("py:m3"), 0)
    expect("EXISTS", r.exists("py:m1", "py:m2", "py:none"), 2)
    expect("APPEND", r.append("py:m1", "yz"), 3)
    expect("STRLEN", r.strlen("py:m1"), 3)
    expect("GETDEL", r.getdel("py:m2"), b"y")
    expect("DEL", r.delete("py:m1", "py:m2", "py:none"), 1)
    value = bytes(range(256)) * 40
    expect("binary SET", r.set("py:bin", value), True)
    expect("binary GET", r.get("py:bin"), value)
    pipe = r.pipeline(transaction=False)
    for i in range(200):
        pipe.set("py:pipe:%03d" % i, str(i))
    results = pipe.execute()
    expect("pipelined SETs", results, [True] * 200)
    # A pipeline runs in the order sent: each GET sees the SET and INCR before it, not after.
    pipe = r.pipeline(transaction=False)
    wanted = []
    for i in range(40):
        pipe.get("py:order")
        pipe.set("py:order", str(i))
        pipe.get("py:order")
        pipe.incr("py:order:n")
        pipe.get("py:order:n")
        wanted += [None if i == 0 else str(i - 1).encode(), True, str(i).encode(), i + 1, str(i + 1).encode()]
    expect("a pipeline of reads and writes, in order", pipe.execute(), wanted)
    keys = sorted(k.decode() for k in r.scan_iter(match="py:pipe:*", count=37))
    expect("SCAN over the pipelined keys", keys, ["py:pipe:%03d" % i for i in range(200)])
    expect("KEYS", len(r.keys("py:pipe:1*")), 100)
    if r.dbsize() < 200:
        fail("DBSIZE %d below the 200 keys written" % r.dbsize())
    info = r.info("replication")
    if info.get("raft_role") not in ("leader", "follower"):
        fail("INFO replication has no raft_role: %r" % info)
    try:
        r.execute_command("NOSUCHCOMMAND", "x")
        fail("an unknown command answered")
    except redis.ResponseError as error:
        if not str(error).startswith("unknown command 'NOSUCHCOMMAND'"):
            fail("unknown command error: %s" % error)
    print("check ok", flush=True)


def incr(port, key, threads, count):
    def worker():
        r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
        for _ in range(count):
            r.incr(key)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(int(redis.Redis(host="127.0.0.1", port=port).get(key)), flush=True)


def load(path, stop, ports):
    acknowledged = 0
    errors = 0
    batch = 0
    port_index = 0
    with open(path, "a") as out:
        r = None
        while not os.path.exists(stop):
            if r is None:
                r = redis.Redis(host="127.0.0.1", port=ports[port_index % len(ports)], socket_timeout=5)
            pipe = r.pipeline(transaction=False)
            keys = ["load:%06d:%02d" % (batch, i) for i in range(16)]
            for key in keys:
                pipe.set(key, key[::-1])
            batch += 1
            try:
                results = pipe.execute(raise_on_error=False)
            except (redis.ConnectionError, redis.TimeoutError):
                errors += 1
                r = None
                port_index += 1
                time.sleep(0.05)
                continue
            for key, result in zip(keys, results):
                if result is True:
                    out.write("%s %s\n" % (key, key[::-1]))
                    acknowledged += 1
                else:
                    errors += 1
            out.flush()
    print("acknowledged %d errors %d" % (acknowledged, errors), flush=True)


def verify(path, port):
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
    pairs = [line.split() for line in open(path) if line.strip()]
    missing = []
    for start in range(0, len(pairs), 500):
        chunk = pairs[start:start + 500]
        values = r.mget([k for k, _ in chunk])
        for (key, wanted), got in zip(chunk, values):
            if got is None or got.decode() != wanted:
                missing.append(key)
    if missing:
        fail("%d of %d acknowledged keys lost, first %s" % (len(missing), len(pairs), missing[:5]))
    print("verified %d" % len(pairs), flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "check":
        check(int(sys.argv[2]))
    elif mode == "incr":
        incr(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "load":
        load(sys.argv[2], sys.argv[3], [int(p) for p in sys.argv[4:]])
    elif mode == "verify":
        verify(sys.argv[2], int(sys.argv[3]))
    else:
        fail("unknown mode " + mode)
