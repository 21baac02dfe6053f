#!/usr/bin/env python3
"""The tables of bench/proxy.sh, from its results file and the raw wrk outputs it names.

    python3 bench/proxy/report.py RESULTS.tsv CLK_TCK CONNECTIONS RATE

RESULTS.tsv: round, target, case, mode (saturated|paced), proxy CPU ticks, upstream CPU ticks, connections the
upstream accepted, wrk output, and the proxy's system (kernel) CPU ticks. With several rounds, each figure is the median over the rounds.

The unique cases (no token sent twice) run on Portcullis only; their ratio is taken against HAProxy's
distinct case of the same algorithm, HAProxy having no cache of verified tokens.
"""

import re
import statistics
import sys

TARGETS = ["direct", "nginx", "haproxy", "portcullis", "nio-http", "nio-scan", "nio-tcp"]
CASES = ["rs256-repeated", "es256-repeated", "rs256-distinct", "es256-distinct", "rs256-unique", "es256-unique"]
UNITS = {"us": 1.0, "ms": 1000.0, "s": 1e6, "m": 60e6, "h": 3600e6}


def duration_us(text):
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError("unreadable latency: " + text)
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_wrk(path):
    out = {"non2xx": 0, "errors": 0, "reused": 0}
    for line in open(path):
        if m := re.match(r"\s*(\d+) requests in ([0-9.]+)(\w+)", line):
            out["requests"] = int(m.group(1))
        elif line.startswith("Requests/sec:"):
            out["rps"] = float(line.split()[1])
        elif m := re.match(r"\s+(50|99)%\s+(\S+)", line):
            out["p" + m.group(1)] = duration_us(m.group(2))
        elif line.startswith("  Non-2xx or 3xx responses:"):
            out["non2xx"] = int(line.split()[-1])
        elif line.startswith("tokens reused:"):
            out["reused"] = int(line.split()[-1])
        elif line.startswith("  Socket errors:"):
            out["errors"] = sum(int(n) for n in re.findall(r"\d+", line))
    missing = [k for k in ("requests", "rps", "p50", "p99") if k not in out]
    if missing:
        raise ValueError("%s: no %s in wrk's output" % (path, ", ".join(missing)))
    return out


def main():
    results, clk_tck, connections, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    runs = {}
    for line in open(results):
        rnd, target, case, mode, proxy_ticks, upstream_ticks, accepts, path, system_ticks = (
            line.rstrip("\n").split("\t"))
        wrk = parse_wrk(path)
        requests = max(wrk["requests"], 1)
        wrk["cpu"] = int(proxy_ticks) / clk_tck * 1e6 / requests if target != "direct" else None
        wrk["kernel_cpu"] = int(system_ticks) / clk_tck * 1e6 / requests if target != "direct" else None
        wrk["upstream_cpu"] = int(upstream_ticks) / clk_tck * 1e6 / requests
        wrk["accepts"] = int(accepts)
        runs.setdefault((target, case, mode), []).append(wrk)

    def figure(target, case, mode, key):
        values = [run[key] for run in runs.get((target, case, mode), []) if run[key] is not None]
        return statistics.median(values) if values else None

    def fmt(value, digits=1, unit=""):
        return "-" if value is None else f"{value:.{digits}f}{unit}"

    targets = [t for t in TARGETS if any(k[0] == t for k in runs)]
    modes = [m for m in ("saturated", "paced") if any(k[2] == m for k in runs)]
    rounds = max(len(v) for v in runs.values())
    for mode in modes:
        title = {
            "saturated": f"saturated: {connections} connections as fast as the target answers",
            "paced": f"paced: about {rate} req/s offered over {connections} connections",
        }[mode]
        print(f"== {title}" + (f" (median of {rounds} rounds)" if rounds > 1 else ""))
        print(f"{'target':11} {'case':15} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'CPU µs/req':>11}"
              f" {'of it kernel':>12} {'upstream µs':>11} {'up conns':>8} {'errors':>7}")
        for case in CASES:
            for target in targets:
                if (target, case, mode) not in runs:
                    continue
                bad = sum(r["non2xx"] + r["errors"] for r in runs[(target, case, mode)])
                print(f"{target:11} {case:15} {fmt(figure(target, case, mode, 'rps'), 0):>9}"
                      f" {fmt(figure(target, case, mode, 'p50') and figure(target, case, mode, 'p50') / 1000, 2):>7}"
                      f" {fmt(figure(target, case, mode, 'p99') and figure(target, case, mode, 'p99') / 1000, 2):>7}"
                      f" {fmt(figure(target, case, mode, 'cpu')):>11}"
                      f" {fmt(figure(target, case, mode, 'kernel_cpu')):>12}"
                      f" {fmt(figure(target, case, mode, 'upstream_cpu')):>11}"
                      f" {fmt(figure(target, case, mode, 'accepts'), 0):>8} {bad:>7}")
        print()

    def ratio(a, b):
        return None if a is None or b is None or b == 0 else a / b

    print("== CPU per request, ratios (saturated runs)")
    print(f"{'case':15} {'haproxy/nginx':>14} {'portcullis/nginx':>17} {'portcullis/haproxy':>19}")
    for case in CASES:
        cpu = {t: figure(t, case, "saturated", "cpu") for t in ("nginx", "haproxy", "portcullis")}
        if case.endswith("-unique"):
            peer = case.replace("-unique", "-distinct")
            cpu["nginx"] = figure("nginx", peer, "saturated", "cpu")
            cpu["haproxy"] = figure("haproxy", peer, "saturated", "cpu")
            if cpu["portcullis"] is None:
                continue
        print(f"{case:15} {fmt(ratio(cpu['haproxy'], cpu['nginx']), 2):>14}"
              f" {fmt(ratio(cpu['portcullis'], cpu['nginx']), 2):>17}"
              f" {fmt(ratio(cpu['portcullis'], cpu['haproxy']), 2):>19}")
    print()

    floors = ("nio-tcp", "nio-scan", "nio-http")
    if any(k[0] in floors for k in runs):
        print("== the floors on SwiftNIO: CPU per request over nginx's, and Portcullis over each (saturated)")
        print(f"{'case':15}" + "".join(f" {f + '/nginx':>15}" for f in floors)
              + "".join(f" {'portcullis/' + f:>20}" for f in floors))
        for case in CASES:
            if case.endswith("-unique"):
                continue
            cpu = {t: figure(t, case, "saturated", "cpu") for t in ("nginx", "portcullis") + floors}
            print(f"{case:15}" + "".join(f" {fmt(ratio(cpu[f], cpu['nginx']), 2):>15}" for f in floors)
                  + "".join(f" {fmt(ratio(cpu['portcullis'], cpu[f]), 2):>20}" for f in floors))
        print()

    print("== p99 added over direct, ms (goal: under 1 ms at 64 connections)")
    header = f"{'case':15}"
    columns = [(t, m) for m in modes for t in targets if t != "direct"]
    for t, m in columns:
        header += f" {t + ' ' + m:>20}"
    print(header)
    for case in CASES:
        row, any_value = f"{case:15}", False
        for t, m in columns:
            a, b = figure(t, case, m, "p99"), figure("direct", case.replace("-unique", "-distinct"), m, "p99")
            added = None if a is None or b is None else (a - b) / 1000
            any_value = any_value or added is not None
            row += f" {fmt(added, 2):>20}"
        if any_value:
            print(row)
    print()

    print("== goals")

    def verdict(ok):
        return "met" if ok else "MISSED"

    for case in ("rs256-repeated", "es256-repeated"):
        r = ratio(figure("portcullis", case, "saturated", "cpu"), figure("nginx", case, "saturated", "cpu"))
        if r is not None:
            print(f"{case}: Portcullis CPU/req = {r:.2f} x nginx plain proxy (goal <= 1.3): {verdict(r <= 1.3)}")
    for case in ("rs256-distinct", "es256-distinct", "rs256-unique", "es256-unique"):
        peer = case.replace("-unique", "-distinct")
        r = ratio(figure("portcullis", case, "saturated", "cpu"), figure("haproxy", peer, "saturated", "cpu"))
        if r is not None:
            note = " (no token twice, vs HAProxy's distinct)" if case.endswith("-unique") else ""
            print(f"{case}: Portcullis CPU/req = {r:.2f} x HAProxy jwt_verify{note} (goal <= 1): {verdict(r <= 1)}")
    for mode in modes:
        added = []
        for case in CASES:
            a, b = figure("portcullis", case, mode, "p99"), figure("direct", case.replace("-unique", "-distinct"), mode, "p99")
            if a is not None and b is not None:
                added.append((a - b) / 1000)
        if added:
            print(f"p99 added by Portcullis, {mode}: worst {max(added):.2f} ms over the cases (goal < 1 ms):"
                  f" {verdict(max(added) < 1)}")
    if not any(k[0] == "portcullis" for k in runs):
        print("(no Portcullis figures in this run)")
    print("References from the issue: HAProxy about 46 µs CPU/request with RS256, 98 µs with ES256;"
          " nginx about 17 µs as a plain proxy.")
    reused = sum(r["reused"] for v in runs.values() for r in v)
    if reused:
        print(f"!! {reused} requests of the unique cases reused a token (the token files ran out):"
              " raise UNIQUE or shorten DURATION")
    bad = sum(r["non2xx"] + r["errors"] for v in runs.values() for r in v)
    if bad:
        print(f"!! {bad} non-2xx responses or socket errors in the measured runs: see the errors column")


if __name__ == "__main__":
    main()
