"""Model backends (llama.cpp, litellm) behind one small interface: see issue 4."""
