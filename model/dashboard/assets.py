"""The page scripts of the dashboard, installed once so that the page works offline.

Solara's page template loads its own scripts and styles (the Vuetify app, RequireJS, Font
Awesome) from a CDN through the server's asset cache. This module reads which packages the
installed Solara's template names, fetches each once with `npm pack` from the configured npm
registry, and unpacks it into that cache, so the dashboard never fetches anything at run time.

    python -m mittelbau.dashboard.assets     # install what is missing (make dashboard-assets)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

# "{{cdn}}/@scope/name@1.2.3/..." or "/name@1.2.3/..." in the template and settings
_REFERENCE = re.compile(r"/((?:@[\w.-]+/)?[\w.-]+)@(\d+\.\d+\.\d+(?:-[\w.]+)?)/")
# Solara files naming what the dashboard's page loads: the page template and the draggable
# grid the Mesa page lays its charts out in (relative to the installed solara package)
_SOURCES = ("server/templates/solara.html.j2", "widgets/vue/gridlayout.vue", "widgets/vue/gridlayout_v3.vue")


class AssetError(RuntimeError):
    """The page scripts cannot be installed or are missing."""


def _sources() -> str:
    import solara

    root = Path(solara.__file__).parent
    return "\n".join((root / name).read_text("utf-8") for name in _SOURCES if (root / name).exists())


def required() -> list[str]:
    """npm package specs ("name@version") the installed Solara's page loads from its CDN."""
    from solara.server import settings

    text = _sources() + "\n" + settings.assets.fontawesome_path
    return sorted({f"{name}@{version}" for name, version in _REFERENCE.findall(text)})


def cache_dir() -> Path:
    """Solara's asset cache (SOLARA_ASSETS_PROXY_CACHE_DIR, by default under the environment)."""
    from solara.server import settings

    return Path(settings.assets.proxy_cache_dir)


def missing() -> list[str]:
    """Required packages not yet in the cache."""
    root = cache_dir()
    return [spec for spec in required() if not (root / spec / "package.json").exists()]


def install(log: Callable[[str], object] = print) -> list[str]:
    """Fetch and unpack the missing packages; returns those installed. Each package is
    unpacked beside the cache and moved in whole, so an interrupted install leaves nothing
    half-written."""
    todo = missing()
    if not todo:
        return []
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError(
            "installing the dashboard's page scripts needs npm (Node.js); missing: " + ", ".join(todo)
        )
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        for spec in todo:
            log(f"fetching {spec}")
            done = subprocess.run(
                [npm, "pack", spec, "--pack-destination", tmp, "--silent"],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise AssetError(f"npm pack {spec} failed: {done.stderr.strip()[-500:]}")
            archive = Path(tmp) / done.stdout.strip().splitlines()[-1]
            unpacked = Path(tmp) / (archive.name + ".d")
            with tarfile.open(archive) as tar:
                tar.extractall(unpacked, filter="data")
            target = root / spec
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            (unpacked / "package").rename(target)
    return todo


def main() -> None:  # pragma: no cover - exercised by `make dashboard-assets`
    try:
        installed = install()
    except AssetError as exc:
        sys.exit(f"error: {exc}")
    print(
        f"dashboard page scripts: {len(installed)} installed, all {len(required())} present in {cache_dir()}"
    )


if __name__ == "__main__":  # pragma: no cover
    main()
