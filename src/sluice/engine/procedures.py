"""The procedures pipelines load INTO: CREATE / DROP / SHOW CREATE PROCEDURE, and reading one
back from the store's catalog for a pipeline."""

from __future__ import annotations

import dataclasses

import pyarrow as pa

from sluice.errors import CatalogError
from sluice.plan import build_plan, procedure_plan
from sluice.result import Result
from sluice.sql import ast, parse, render
from sluice.stores.base import Store
from sluice.vocab import ROW_COLUMN, TableInfo


def load(store: Store, name: str) -> ast.CreateProcedure:
    """The procedure a pipeline loads into, from the store's catalog."""
    text = store.procedure(name)
    if text is None:
        raise CatalogError(
            f"procedure {name} does not exist; create it first: CREATE PROCEDURE {name} "
            "(batch QUERY(col TYPE, ...)) AS BEGIN ... END"
        )
    stmt = parse(text)
    assert isinstance(stmt, ast.CreateProcedure)
    return stmt


def create(stmt: ast.CreateProcedure, store: Store) -> Result:
    """Keep the procedure once its body runs: on an empty batch, in a transaction that is
    rolled back (so a missing table or a bad statement is named now, not at the first
    batch)."""
    existing = store.procedure(stmt.name)
    if existing is not None and not stmt.or_replace:
        raise CatalogError(
            f"procedure {stmt.name} already exists; use CREATE OR REPLACE PROCEDURE to change it"
        )
    name = stmt.name if existing is None else _name_of(existing)
    stmt = dataclasses.replace(stmt, name=name, or_replace=False)
    table = TableInfo(name, stmt.columns)
    trial = ast.CreatePipeline("", ast.SourceSpec("FS", ""), name, into_procedure=True)
    plan = procedure_plan(
        build_plan(trial, table, [c for c, _ in stmt.columns], table_sql=name), stmt
    )
    empty = pa.table(
        {**{c: pa.array([], pa.string()) for c, _ in stmt.columns},
         ROW_COLUMN: pa.array([], pa.int64())}
    )  # fmt: skip
    reason = store.trial_load(plan, empty)
    if reason is not None:
        raise CatalogError(f"procedure {name}: its body fails on an empty batch: {reason}")
    store.save_procedure(name, render(stmt), replace=existing is not None)
    return Result()


def drop(stmt: ast.DropProcedure, store: Store) -> Result:
    if store.procedure(stmt.name) is None:  # not Sluice's: the store's own, if any
        if store.has_procedures:
            return store.execute(render(stmt))
        if stmt.if_exists:
            return Result()
        raise CatalogError(f"procedure {stmt.name} does not exist")
    users = [r.name for r in store.pipelines() if _loads_into(r.definition, stmt.name)]
    if users:
        raise CatalogError(
            f"procedure {stmt.name} is what pipeline(s) {', '.join(users)} load into; drop "
            "or replace them first"
        )
    store.drop_procedure(stmt.name)
    return Result()


def show_create(stmt: ast.ShowCreateProcedure, store: Store) -> Result:
    text = store.procedure(stmt.name)
    if text is None:
        raise CatalogError(f"procedure {stmt.name} does not exist")
    return Result(["Procedure", "Create Procedure"], [(_name_of(text), text)])


def _name_of(procedure: str) -> str:
    stmt = parse(procedure)
    assert isinstance(stmt, ast.CreateProcedure)
    return stmt.name


def _loads_into(definition: str, procedure: str) -> bool:
    stmt = parse(definition)
    assert isinstance(stmt, ast.CreatePipeline)
    return stmt.into_procedure and stmt.table.lower() == procedure.lower()
