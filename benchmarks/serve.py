"""Chapter 13's load test against a running service: latency percentiles and throughput at
several concurrencies, measured one after another in one run.

A benchmark, not a test. Start a service first (``python -m helpers.serve --model BUNDLE``),
then::

    python benchmarks/serve.py --url http://127.0.0.1:8000 [--requests 200] [--concurrency 1 8 32]
                               [--texts 1] [--time-limit 30]

Each level sends ``--requests`` POST /predict requests of ``--texts`` sentences (Rotten Tomatoes
sentences from the offline package, or ``--sentence`` repeated) from that many concurrent
clients, all levels within ``--time-limit`` seconds. Exits with status 1 if any request got a
5xx or was dropped. Run it from another machine (or at least other cores) than the server's
for figures that describe the server alone.
"""

from __future__ import annotations

import argparse
import sys

import httpx
import pandas as pd

from helpers import serve


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--texts", type=int, default=1, help="sentences per request")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds, all levels")
    parser.add_argument("--sentence", default=None, help="send this sentence instead")
    args = parser.parse_args()
    try:
        health = httpx.get(args.url.rstrip("/") + "/health", timeout=5).json()
    except httpx.HTTPError as err:
        sys.exit(f"no service at {args.url} ({err}): start one with "
                 "`python -m helpers.serve --model BUNDLE`")
    if args.sentence:
        sentences = [args.sentence]
    else:
        from helpers import data

        sentences = data.load_rotten_tomatoes()["text"].tolist()[:1000]
    payloads = [{"texts": [sentences[(i + j) % len(sentences)] for j in range(args.texts)]}
                for i in range(0, len(sentences), args.texts)]
    rows = [serve.run_load_test(args.url, payloads, args.requests, c,
                                time_limit_s=args.time_limit / len(args.concurrency))
            for c in args.concurrency]
    table = pd.DataFrame(rows).set_index("concurrency")
    print(f"service {health['model_version']}, {health['threads']} thread(s) per call; "
          f"{args.texts} sentence(s) per request")
    cols = ["requests", "completed", "p50_ms", "p95_ms", "p99_ms", "rps", "errors_5xx",
            "transport_errors"]
    print(table[cols].round(1).to_string())
    return int((table["errors_5xx"] + table["transport_errors"]).sum() > 0)


if __name__ == "__main__":
    sys.exit(main())
