"""Deployment packages: each function's zip holds only its module; shared code ships as the layer.

For a real deploy the layer (``handlers/common`` plus ``handlers/requirements.txt``, built for
the target architecture) comes from ``infra.packaging``. The offline plan never builds: it
records the same archive layout without third-party dependencies.
"""
from __future__ import annotations

import pulumi

from infra import packaging, specs
from infra.project import project_dir

HANDLERS_DIR = project_dir() / "handlers"

# Set by the offline plan (Pulumi mocks): describe archives, do not build them.
OFFLINE = False


def function_code(module: str) -> pulumi.Archive:
    """The function's own package: just ``<module>.py`` at the root.

    A deploy uploads the zip ``infra.packaging`` builds, the one the local sandbox unpacks and runs.
    """
    if OFFLINE:
        return pulumi.AssetArchive({f"{module}.py": pulumi.FileAsset(str(HANDLERS_DIR / f"{module}.py"))})
    key = next(spec.key for spec in specs.FUNCTIONS if spec.module == module)
    return pulumi.FileArchive(str(packaging.function_archive_path(key)))


def layer_code(architecture: str) -> pulumi.Archive:
    """The shared layer: ``python/common`` and the third-party dependencies for ``architecture``."""
    if OFFLINE:
        return pulumi.AssetArchive({"python/common": pulumi.FileArchive(str(HANDLERS_DIR / "common"))})
    return pulumi.FileArchive(str(packaging.layer_archive_path(architecture)))   # built, or reused from build/
