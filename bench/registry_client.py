"""The client API's cache: ``get_prompt`` served from the cache, per call.

A store with one approved prompt is the registry (a SQLite file in a temp folder, given by
``WORKBENCH_REGISTRY__URL``); after one fetch, ``get_prompt`` is called ``--calls`` times
within the cache's time limit. Measured per call (median of ``--rounds`` rounds): the whole
``get_prompt`` (the settings read, the client looked up, the cached copy returned); the
client's own ``get`` alone; and, as the baseline run in the same rounds, what an application
would do without the client: read the prompt's JSON file from disk (``json.load``).

Goal: ``get_prompt`` from the cache under 1 ms per call.

Usage: python bench/registry_client.py [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def per_call(fn, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="registry-client-") as tmp:
        home = Path(tmp)
        for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                         ("XDG_CACHE_HOME", "cache")):
            os.environ[var] = str(home / sub)
        url = f"sqlite:///{home / 'registry.db'}"
        os.environ["WORKBENCH_REGISTRY__URL"] = url
        os.environ["WORKBENCH_REGISTRY__CACHE_TTL_S"] = "3600"
        from workbench.domain import Message, PromptContent, parse_ref
        from workbench.registry import Client, get_prompt
        from workbench.storage import repo
        from workbench.storage.approvals import approve
        from workbench.storage.db import open_store

        store = open_store(url)
        content = PromptContent(messages=(Message(role="user", content="Answer: {{ question }}"),))
        repo.commit(store, repo.Draft("support", content), message="m", author="bench")
        approve(store, parse_ref("support@1"), actor="bench", comment="bench")
        store.close()
        first = get_prompt("support")
        client = Client(url, ttl_s=3600)
        client.get("support")
        plain = home / "support.json"
        plain.write_text(json.dumps(first.as_data()))

        def read_file() -> object:
            with plain.open(encoding="utf-8") as handle:
                return json.load(handle)

        whole, own, base = [], [], []
        for _ in range(args.rounds):
            whole.append(per_call(lambda: get_prompt("support"), args.calls))
            own.append(per_call(lambda: client.get("support"), args.calls))
            base.append(per_call(read_file, args.calls))
    us = lambda xs: f"{statistics.median(xs) * 1e6:.1f} us (min {min(xs) * 1e6:.1f}, max {max(xs) * 1e6:.1f})"
    print(f"get_prompt from the cache, {args.rounds} rounds x {args.calls} calls (median per call)")
    print(f"  get_prompt (settings read included): {us(whole)}  goal < 1 ms: "
          f"{'met' if statistics.median(whole) < 1e-3 else 'NOT met'}")
    print(f"  Client.get alone: {us(own)}")
    print(f"  baseline, json.load of the prompt's file: {us(base)}; "
          f"ratio get_prompt/baseline {statistics.median(whole) / statistics.median(base):.2f}")


if __name__ == "__main__":
    main()
