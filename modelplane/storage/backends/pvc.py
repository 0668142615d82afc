"""pvc://<claim>/<path>. On one machine a claim is a folder: `<pvc root>/<claim>`."""

from __future__ import annotations

from pathlib import Path

from .. import paths
from ..errors import NotFoundError
from ..uri import Location


def claim_path(location: Location, root: str | Path | None = None) -> Path:
    """The local path a pvc:// location names; the claim's folder must exist."""
    claim = (Path(root).expanduser() if root else paths.pvc_dir()) / location.bucket
    if not claim.is_dir():
        raise NotFoundError(
            f"{location.display}: the claim {location.bucket!r} has no folder ({claim} does not exist)"
        )
    return claim.joinpath(*location.path.split("/")) if location.path else claim
