"""One person's work loop for the sync tests (run as its own OS process): commit a new
version of each shared prompt, move a label now and then, push; ROUNDS times."""

from __future__ import annotations

import sys

from workbench.domain import Message, PromptContent, Ref
from workbench.storage import repo
from workbench.storage.db import open_store
from workbench.storage.sync_push import push


def main() -> None:
    local_url, registry_url, who, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    local, registry = open_store(local_url), open_store(registry_url)
    conflicts = 0
    for i in range(rounds):
        for name in ("alpha", "beta"):
            content = PromptContent(messages=(Message(role="user", content=f"{who} {i} {name}"),))
            made = repo.commit(local, repo.Draft(name=name, content=content), message=f"{i}",
                               author=who).version
            if i % 10 == 0:
                repo.set_label(local, Ref(name=name, number=made.number), f"{who}-pick", actor=who)
        conflicts += len(push(local, registry).conflicts)
    print(f"{who} done, {conflicts} conflicts", flush=True)


if __name__ == "__main__":
    main()
