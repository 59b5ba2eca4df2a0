"""The apps' source checkouts: what each image built from source is built from."""

from __future__ import annotations

from pathlib import Path

from components.config.stack import NAMESPACE, StackConfig
from components.foundation.builds import SourceError, source_digest
from components.model.app import App, Build

NO_CHECKOUT = "0" * 64
"""The digest of an image whose checkout is absent (the offline plan only)."""


def builds_of(app: App) -> list[Build]:
    """Every image the app builds from source, the services' and those they start."""
    specs = []
    for service in app.services:
        for spec in (service.image, *service.extra_images):
            if isinstance(spec, Build) and spec not in specs:
                specs.append(spec)
    return specs


def source_digests(
    config: StackConfig, catalog: tuple[App, ...], required: bool = True
) -> tuple[dict[str, str], list[str]]:
    """Each build's digest by its repository, and one line per checkout or Dockerfile
    that is missing."""
    digests: dict[str, str] = {}
    problems: list[str] = []
    for app in catalog:
        checkout = config.app_sources.get(app.name)
        for spec in builds_of(app):
            if spec.repository in digests:
                continue
            if checkout is None:
                digests[spec.repository] = NO_CHECKOUT
                continue
            try:
                digests[spec.repository] = source_digest(checkout, spec)
            except SourceError as error:
                digests[spec.repository] = NO_CHECKOUT
                if required:
                    problems.append(f"{NAMESPACE}:appSources.{app.name}: {error}")
    return digests, problems


def absent_checkouts(config: StackConfig) -> dict[str, str]:
    """App -> why it cannot be built here: no ``appSources`` entry, or no such folder."""
    absent = {}
    for app in config.apps():
        if not app.builds_from_source:
            continue
        checkout = config.app_sources.get(app.name)
        if checkout is None:
            absent[app.name] = f"no appSources.{app.name}"
        elif not Path(checkout).is_dir():
            absent[app.name] = f"its source checkout {checkout} is not here"
    return absent
