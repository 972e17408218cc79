"""Where the app's own files and its working folders are.

In a source checkout, templates/, static/ and migrations/ sit at the project's top level, and the
instance (database, media, secrets) and models/ folders default to the project's own. Installed from
a wheel, the three come inside the package (avatar/templates, …: see pyproject.toml) and the
instance and models folders default to the current directory's, as `./instance` in the README."""
from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE.parent


def in_source_tree() -> bool:
    """Running from a checkout (the project's pyproject.toml and templates/ beside the package)."""
    return (SOURCE_ROOT / "pyproject.toml").is_file() and (SOURCE_ROOT / "templates").is_dir()


def resource_dir(name: str) -> Path:
    """templates, static or migrations: the packaged copy in an installed wheel, else the top level's."""
    packaged = PACKAGE / name
    return packaged if packaged.is_dir() else SOURCE_ROOT / name


def work_dir(name: str) -> Path:
    """instance or models: the project's in a checkout, else the current directory's."""
    return (SOURCE_ROOT if in_source_tree() else Path.cwd()) / name


def app_version() -> str:
    """The installed avatar distribution's version ("unknown" when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("avatar")
    except PackageNotFoundError:
        return "unknown"
