"""How leon writes a size for people: one formatter for every screen and command."""

from __future__ import annotations


def human_size(n: float) -> str:
    """``512 B``, ``1.5 KB``, ``2.0 MB``, ``1.2 GB`` (powers of 1024)."""
    if n < 1024:
        return f"{int(n)} B"
    size = float(n)
    for unit in ("KB", "MB", "GB"):
        size /= 1024
        if size < 1024 or unit == "GB":
            break
    return f"{size:.1f} {unit}"
