"""Prompt Workbench: engineer, compare and version LLM prompts.

The core package (templates, domain types, configuration, the CLI) stays free of
heavy imports: textual, litellm, chromadb and llama_cpp are imported where used.
"""

from __future__ import annotations

__version__ = "0.1.0"
