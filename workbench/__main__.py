"""`python -m workbench` is the ``workbench`` script."""

from __future__ import annotations

from workbench.start import main

if __name__ == "__main__":
    main()
