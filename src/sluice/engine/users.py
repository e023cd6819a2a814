"""CREATE/ALTER/DROP USER, GRANT, REVOKE, SHOW USERS and SHOW GRANTS: the users of a database,
kept in its catalog so that every endpoint (MySQL and HTTP) and every process shares them.

A user's password is kept as mysql_native_password keeps it, SHA1(SHA1(password)), which is
what the MySQL protocol needs to check a login without the password ever crossing the wire.
Privileges are the whole database's: ``USAGE`` (log in only, what CREATE USER gives),
``SELECT`` (read and watch) and ``ALL`` (also write, and create, start and stop pipelines).
Reading and writing the server's files is the server's administrator's alone.
"""

from __future__ import annotations

import hashlib
import hmac

from sluice.errors import CatalogError
from sluice.result import Result
from sluice.sql import ast
from sluice.stores.base import Store, UserRecord

USAGE, SELECT, ALL = "USAGE", "SELECT", "ALL"
RANK = {USAGE: 0, SELECT: 1, ALL: 2}


def auth_string(password: str) -> str:
    """The password as kept: SHA1(SHA1(password)), hex (as mysql-mimic checks it)."""
    return hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest()


def password_matches(user: UserRecord, password: str) -> bool:
    return hmac.compare_digest(user.auth_string, auth_string(password))


def find(store: Store, name: str) -> UserRecord | None:
    return next((u for u in store.users() if u.name == name), None)


def create(stmt: ast.CreateUser, store: Store) -> Result:
    existing = find(store, stmt.name)
    if stmt.alter:
        if existing is None:
            raise CatalogError(f"user {stmt.name} does not exist (SHOW USERS lists them)")
        store.save_user(UserRecord(stmt.name, auth_string(stmt.password), existing.privilege),
                        replace=True)  # fmt: skip
        return Result()
    if existing is not None:
        if stmt.if_not_exists:
            return Result(warnings=[f"user {stmt.name} already exists"])
        raise CatalogError(
            f"user {stmt.name} already exists; ALTER USER {stmt.name} IDENTIFIED BY '…' "
            "changes its password"
        )
    if not stmt.password:
        raise CatalogError(f"user {stmt.name} needs a password: IDENTIFIED BY '<password>'")
    store.save_user(UserRecord(stmt.name, auth_string(stmt.password), USAGE), replace=False)
    return Result()


def drop(stmt: ast.DropUser, store: Store) -> Result:
    if find(store, stmt.name) is None:
        if stmt.if_exists:
            return Result()
        raise CatalogError(f"user {stmt.name} does not exist (SHOW USERS lists them)")
    store.drop_user(stmt.name)
    return Result()


def grant(stmt: ast.Grant, store: Store) -> Result:
    user = find(store, stmt.user)
    if user is None:
        raise CatalogError(
            f"user {stmt.user} does not exist; CREATE USER {stmt.user} IDENTIFIED BY '…' first"
        )
    privilege = stmt.privilege
    if stmt.revoke:  # what is left: REVOKE ALL leaves nothing, REVOKE SELECT leaves nothing
        privilege = USAGE
    elif RANK[user.privilege] > RANK[privilege]:
        privilege = user.privilege  # GRANT SELECT to a user with ALL changes nothing
    store.save_user(UserRecord(user.name, user.auth_string, privilege), replace=True)
    return Result()


def show(stmt: ast.ShowUsers, store: Store) -> Result:
    if not stmt.grants:
        return Result(["User", "Privileges"], [(u.name, u.privilege) for u in store.users()])
    if stmt.user is None:
        raise CatalogError("SHOW GRANTS names the user here: SHOW GRANTS FOR <user>")
    user = find(store, stmt.user)
    if user is None:
        raise CatalogError(f"user {stmt.user} does not exist (SHOW USERS lists them)")
    return Result([f"Grants for {user.name}@%"], [(grant_text(user.name, user.privilege),)])


def grant_text(name: str, privilege: str) -> str:
    what = "ALL PRIVILEGES" if privilege == ALL else privilege
    return f"GRANT {what} ON *.* TO `{name}`@`%`"
