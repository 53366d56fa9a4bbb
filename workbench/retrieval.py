"""Prompt variables filled by retrieval from a Chroma index, and what each run was given.

A variant binds a variable (``context``) to a retrieval: an index (a Chroma folder, or a
server), a collection, ``k``, a ``where`` filter and a query template rendered from the
case's variables. Before the cells are rendered, each case's query is embedded and
searched; the chunks' texts, joined, become the variable's value, and the run records
the chunk ids, distances, the exact context inserted and any chunk that reads like an
instruction aimed at the model (indirect prompt injection).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import ValidationError

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.rag.index import Index

DEFAULT_SEPARATOR = "\n\n"

# What indirect prompt injection looks like in a retrieved document: instructions aimed at
# the model, chat-template role markers, tool-call syntax. A flag asks a person to look;
# it never changes what is sent.
_INJECTION = [
    ("instruction", re.compile(
        r"\b(ignore|disregard|forget|override)\b[^.\n]{0,40}?\b(previous|prior|above|earlier|"
        r"all|any|your|the)\b[^.\n]{0,20}?\b(instructions?|prompts?|rules|messages|context)\b",
        re.IGNORECASE)),
    ("instruction", re.compile(
        r"\b(you are now|new instructions?:|from now on,? you|act as (an?|the) |"
        r"reveal (your|the) (system )?prompt|system prompt)", re.IGNORECASE)),
    ("role marker", re.compile(
        r"<\|(im_start|im_end|system|user|assistant|start_header_id|end_header_id|eot_id)\|>|"
        r"\[/?INST\]|<</?SYS>>|^\s*#{1,3}\s*(system|instruction)s?\b|"
        r"^\s*(system|assistant)\s*:", re.IGNORECASE | re.MULTILINE)),
    ("tool call", re.compile(
        r"\"(tool_calls|function_call)\"\s*:|<tool_call>|<function[=>]|\bcall the \w+ tool\b",
        re.IGNORECASE)),
]


def injection_flags(text: str) -> list[str]:
    """Why ``text`` may be an instruction aimed at the model (empty: nothing found).

    Each flag names the kind and quotes what matched: ``instruction: "ignore previous
    instructions"``.
    """
    flags = []
    for kind, pattern in _INJECTION:
        for match in pattern.finditer(text):
            quoted = " ".join(match.group().split())[:60]
            flag = f'{kind}: "{quoted}"'
            if flag not in flags:
                flags.append(flag)
    return flags


@dataclass(frozen=True)
class Binding:
    """A prompt variable filled by retrieval."""

    variable: str
    collection: str
    query: str
    """A Jinja2 template over the case's variables: the text searched for."""
    path: str | None = None
    """A Chroma folder (read-only: the workbench searches a private snapshot)."""
    host: str | None = None
    port: int = 8000
    k: int = 4
    where: dict[str, Any] | None = None
    embed: str | None = None
    """The model that embeds the query when the collection's own function cannot run
    offline (``smollm2``); default: the collection's own, or the one it was built with."""
    separator: str = DEFAULT_SEPARATOR

    def __post_init__(self) -> None:
        if (self.path is None) == (self.host is None):
            raise ValidationError(f"retrieval for {self.variable}: give either index (a Chroma "
                                  "folder) or host (a Chroma server)")
        if self.k < 1:
            raise ValidationError(f"retrieval for {self.variable}: k must be at least 1")

    @property
    def source(self) -> str:
        return self.path if self.path is not None else f"{self.host}:{self.port}"

    def describe(self) -> dict[str, Any]:
        """Plain data (for fingerprints and records)."""
        return {"variable": self.variable, "index": self.source, "collection": self.collection,
                "k": self.k, "where": self.where, "query": self.query, "embed": self.embed,
                "separator": self.separator}


@dataclass(frozen=True)
class Retrieved:
    """What one binding gave one case."""

    variable: str
    collection: str
    index: str
    query: str
    """The rendered query text."""
    k: int
    where: dict[str, Any] | None
    embedder: str
    hits: tuple[dict[str, Any], ...]
    """``rank``, ``id``, ``distance``, ``text`` and ``flags`` of each chunk given."""
    context: str
    """The exact text inserted for the variable."""

    def as_dict(self) -> dict[str, Any]:
        return {"variable": self.variable, "collection": self.collection, "index": self.index,
                "query": self.query, "k": self.k, "where": self.where,
                "embedder": self.embedder, "hits": [dict(h) for h in self.hits],
                "context": self.context}


@dataclass
class Retriever:
    """Runs bindings: each index opened once, each embedder loaded once, each distinct
    query searched once. Close it when done (it holds worker threads)."""

    settings: Settings
    base: Path = field(default_factory=Path.cwd)
    """What relative index paths are relative to (the suite file's folder)."""
    _indexes: dict[str, Index] = field(default_factory=dict)
    _embedders: dict[tuple[str, str], Any] = field(default_factory=dict)
    _memo: dict[Any, Retrieved] = field(default_factory=dict)

    def retrieve(self, binding: Binding, variables: dict[str, Any]) -> Retrieved:
        """Search for the case's query and build the variable's text.

        Raises:
            ValidationError: the query template cannot be rendered for these variables.
            RagError, EmbedderError: the index or the embedder failed (the message says how).
        """
        from workbench import templates

        try:
            query = templates.render(binding.query, variables, where="query")
        except templates.TemplateError as exc:
            raise ValidationError(f"retrieval for {binding.variable}: query: {exc}") from None
        memo_key = (repr(binding.describe()), query)
        if memo_key in self._memo:
            return self._memo[memo_key]
        index = self._index(binding)
        embedder = self._embedder(index, binding)
        result = index.query(binding.collection, text=query, embedder=embedder, k=binding.k,
                             where=binding.where)
        hits = tuple(
            {"rank": h.rank, "id": h.id, "distance": h.distance, "text": h.text,
             "flags": injection_flags(h.text)}
            for h in result.hits
        )
        found = Retrieved(binding.variable, binding.collection, binding.source, query,
                          binding.k, binding.where, result.embedder, hits,
                          binding.separator.join(h["text"] for h in hits))
        self._memo[memo_key] = found
        return found

    def _index(self, binding: Binding) -> Index:
        from workbench.rag.index import open_index

        if binding.source not in self._indexes:
            if binding.path is not None:
                folder = Path(binding.path).expanduser()
                self._indexes[binding.source] = open_index(
                    folder if folder.is_absolute() else self.base / folder)
            else:
                self._indexes[binding.source] = open_index(host=binding.host, port=binding.port)
        return self._indexes[binding.source]

    def _embedder(self, index: Index, binding: Binding) -> Any:
        from workbench.rag.functions import query_embedder

        key = (binding.source + "\x00" + binding.collection, binding.embed or "")
        if key not in self._embedders:
            self._embedders[key] = query_embedder(index, binding.collection, self.settings,
                                                  binding.embed)
        return self._embedders[key]

    def close(self) -> None:
        for index in self._indexes.values():
            index.close()
        self._indexes.clear()
        for embedder in self._embedders.values():
            close = getattr(embedder, "close", None)
            if close is not None:
                close()
        self._embedders.clear()

    def __enter__(self) -> Retriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def retriever_for(variants: Sequence[Any], settings: Settings,
                  base: Path | None = None) -> Iterator[Retriever | None]:
    """A retriever when some variant binds variables to an index (None otherwise), closed
    when the block ends."""
    if not any(v.retrieval for v in variants):
        yield None
        return
    retriever = Retriever(settings, base if base is not None else Path.cwd())
    try:
        yield retriever
    finally:
        retriever.close()


def parse_bindings(data: Any, where: str) -> tuple[Binding, ...]:
    """A suite's ``retrieval:`` mapping (variable -> settings) as bindings.

    Raises:
        ValidationError: not a mapping, unknown keys, or missing ones (names which).
    """
    if data is None:
        return ()
    if not isinstance(data, dict) or not data:
        raise ValidationError(f"{where}: retrieval: a mapping of variable names to retrievals")
    known = {"index", "host", "port", "collection", "k", "where", "query", "embed", "separator"}
    bindings = []
    for variable, spec in data.items():
        at = f"{where}: retrieval for {variable}"
        if not isinstance(spec, dict):
            raise ValidationError(f"{at}: a mapping (index, collection, k, where, query, embed)")
        unknown = set(spec) - known
        if unknown:
            raise ValidationError(f"{at}: unknown keys {', '.join(sorted(unknown))} "
                                  f"(allowed: {', '.join(sorted(known))})")
        for required in ("collection", "query"):
            if not isinstance(spec.get(required), str) or not spec[required]:
                raise ValidationError(f"{at}: {required} is required (a string)")
        if spec.get("where") is not None and not isinstance(spec["where"], dict):
            raise ValidationError(f"{at}: where must be a mapping (a Chroma filter)")
        k = spec.get("k", 4)
        if not isinstance(k, int) or isinstance(k, bool):
            raise ValidationError(f"{at}: k must be a whole number")
        port = spec.get("port", 8000)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise ValidationError(f"{at}: port must be a whole number from 1 to 65535")
        for name in ("index", "host", "embed", "separator"):
            if spec.get(name) is not None and not isinstance(spec[name], (str, int, float)):
                raise ValidationError(f"{at}: {name} must be text")
        from workbench import templates

        try:
            templates.compile_template(spec["query"], where="query")
        except templates.TemplateError as exc:
            raise ValidationError(f"{at}: {exc}") from None
        bindings.append(Binding(
            variable=str(variable), collection=spec["collection"], query=spec["query"],
            path=str(spec["index"]) if spec.get("index") is not None else None,
            host=spec.get("host"), port=port, k=k,
            where=spec.get("where"), embed=spec.get("embed"),
            separator=str(spec.get("separator", DEFAULT_SEPARATOR)),
        ))
    return tuple(bindings)


def describe(items: Sequence[dict[str, Any]], *, text_chars: int = 160) -> str:
    """What retrieval gave a run, as plain text for people: per variable, the search,
    then each chunk (rank, id, distance, the start of its text) and its flags."""
    import json

    lines: list[str] = []
    for item in items:
        where = f", where {json.dumps(item['where'], ensure_ascii=False)}" if item.get("where") else ""
        lines.append(f"{item['variable']} <- {item['collection']} (k={item['k']}{where}), "
                     f"query {json.dumps(item['query'], ensure_ascii=False)}, "
                     f"embedded by {item['embedder']}")
        for hit in item["hits"]:
            text = " ".join(str(hit["text"]).split())
            if len(text) > text_chars:
                text = text[: text_chars - 1] + "…"
            lines.append(f"  {hit['rank']}. {hit['id']}  {hit['distance']:.3f}  {text}")
            lines.extend(f"     ! possible prompt injection: {flag}" for flag in hit["flags"])
        if not item["hits"]:
            lines.append("  (nothing retrieved)")
    return "\n".join(lines)


def brief(items: Sequence[dict[str, Any]]) -> str:
    """One line: the chunk ids given, and how many read like instructions."""
    parts = []
    for item in items:
        ids = " ".join(f"{h['id']}({h['distance']:.2f})" for h in item["hits"]) or "nothing"
        parts.append(f"{item['variable']} <- {ids}")
    flagged = sum(1 for item in items for h in item["hits"] if h["flags"])
    return " · ".join(parts) + (f" · ! {flagged} chunk(s) look like instructions" if flagged else "")
