"""Where bale keeps its caches: ``BALE_CACHE_DIR``, else the user cache directory + ``bale``.

Plain strings and ``os`` only at import: ``builder.rebuild`` runs before the
rest of bale loads and must stay cheap to import.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


# Where pushed blobs were seen (builder/registry/locations.py); ``bale cache prune`` ages it out.
LOCATIONS_FILE = "blob-locations.json"


def cache_root() -> str:
    """``BALE_CACHE_DIR`` if set, else the platform's user cache directory + ``bale``."""
    configured = os.environ.get("BALE_CACHE_DIR", "").strip()
    if configured:
        return configured
    import platformdirs  # only when no directory is configured

    return str(platformdirs.user_cache_dir("bale"))


def cache_dir() -> Path:
    """``cache_root()`` as a path."""
    from pathlib import Path

    return Path(cache_root())
