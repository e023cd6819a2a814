"""Connection links: CREATE / DROP / SHOW LINKS, and ``LOAD DATA LINK name '…'`` resolved to
the source the link names.

A link keeps a source's kind, CONFIG and CREDENTIALS under a name, so pipelines share them and
the secrets are written once. ``SHOW LINKS`` and ``information_schema.LINKS`` show a link's
CONFIG, never its CREDENTIALS; a pipeline's definition holds the link's name, not its secrets.
"""

from __future__ import annotations

import dataclasses
import json

from sluice.errors import CatalogError, NotSupportedError
from sluice.options import json_object
from sluice.result import Result
from sluice.sources import NOT_YET, SOURCES
from sluice.sql import ast, parse
from sluice.stores.base import LinkRecord, Store


def create(stmt: ast.CreateLink, store: Store) -> Result:
    for text, what in ((stmt.config, "CONFIG"), (stmt.credentials, "CREDENTIALS")):
        json_object(text, f"the link's {what}", CatalogError)
    existing = _find(store, stmt.name)
    if existing is not None:
        if stmt.if_not_exists:
            return Result(warnings=[f"link {existing.name} already exists"])
        if not stmt.or_replace:
            raise CatalogError(
                f"link {existing.name} already exists; use CREATE OR REPLACE LINK to change it"
            )
        if existing.type != stmt.kind:
            raise CatalogError(
                f"link {existing.name} is a {existing.type} link; CREATE OR REPLACE cannot make "
                f"it {stmt.kind} (drop it and create it again)"
            )
    name = existing.name if existing is not None else stmt.name
    link = LinkRecord(name, stmt.kind, stmt.config, stmt.credentials, stmt.description)
    store.save_link(link, replace=existing is not None)
    if stmt.kind not in SOURCES:
        reason = NOT_YET.get(stmt.kind, f"{stmt.kind} links are not supported yet")
        return Result(warnings=[f"link {name} is kept, but pipelines cannot use it: {reason}"])
    return Result()


def drop(stmt: ast.DropLink, store: Store) -> Result:
    link = _find(store, stmt.name)
    if link is None:
        if stmt.if_exists:
            return Result(warnings=[f"link {stmt.name} does not exist"])
        raise CatalogError(f"link {stmt.name} does not exist (SHOW LINKS lists them)")
    users = [r.name for r in store.pipelines() if uses(r.definition, link.name)]
    if users:
        raise CatalogError(
            f"link {link.name} is used by pipeline(s) {', '.join(users)}: drop them first, or "
            "point them at another link (ALTER PIPELINE … SET LINK other)"
        )
    store.drop_link(link.name)
    return Result()


def show(stmt: ast.ShowLinks, store: Store) -> Result:
    current = store.database()
    if stmt.database is not None and stmt.database.lower() != current.lower():
        raise CatalogError(
            f"SHOW LINKS ON {stmt.database}: that is not this database ({current}); connect "
            "to it to see its links"
        )
    rows = [(r.name, r.type, r.description, r.config) for r in store.links()]
    return Result(["Link", "Type", "Description", "Config"], rows)


def resolve(defn: ast.CreatePipeline, store: Store) -> ast.CreatePipeline:
    """``defn`` reading the source its link names (unchanged if it names none). The pipeline's
    own CONFIG / CREDENTIALS keys, if any, win over the link's."""
    src = defn.source
    if src.kind != "LINK" or src.link is None:
        return defn
    database, _, name = src.link.rpartition(".")
    if database and database.lower() != store.database().lower():
        raise CatalogError(
            f"link {src.link}: database {database} is not this one ({store.database()})"
        )
    link = _find(store, name)
    if link is None:
        raise CatalogError(
            f"link {name} does not exist; create it first: CREATE LINK {name} AS KAFKA "
            "CONFIG '{…}' CREDENTIALS '{…}' (SHOW LINKS lists them)"
        )
    if link.type not in SOURCES:
        reason = NOT_YET.get(link.type, f"{link.type} links are not supported yet")
        raise NotSupportedError(f"link {link.name}: {reason}")
    source = ast.SourceSpec(
        link.type,
        src.uri,
        _merged(link.config, src.config, "CONFIG"),
        _merged(link.credentials, src.credentials, "CREDENTIALS"),
    )
    return dataclasses.replace(defn, source=source)


def _merged(base: str | None, override: str | None, what: str) -> str | None:
    if override is None:
        return base
    merged = json_object(base, f"the link's {what}", CatalogError)
    merged.update(json_object(override, what, CatalogError))
    return json.dumps(merged)


def _find(store: Store, name: str) -> LinkRecord | None:
    return next((r for r in store.links() if r.name.lower() == name.lower()), None)


def uses(definition: str, link: str) -> bool:
    """Whether a pipeline's stored definition reads from ``link``."""
    stmt = parse(definition)
    assert isinstance(stmt, ast.CreatePipeline)
    name = stmt.source.link
    return name is not None and name.rpartition(".")[2].lower() == link.lower()
