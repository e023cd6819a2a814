"""The MySQL system variables a session answers for: mysql-mimic's, and those real drivers
read or set when they connect (MariaDB Connector/J, MySQL Connector/J and Connector/Python,
mysqlclient, PyMySQL, SQLAlchemy). Their values describe a MySQL 8 server; none of them
changes what the store does."""

from __future__ import annotations

from typing import Any

from mysql_mimic.errors import ErrorCode, MysqlError
from mysql_mimic.intercept import value_to_expression
from mysql_mimic.variables import SYSTEM_VARIABLES, Variables, VariableSchema
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.executor import execute

import sluice

# MySQL 8's default: no ANSI_QUOTES, so "x" is a string, as the dialect Sluice reads says.
SQL_MODE = (
    "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
)

# name: (type, default, settable)
SCHEMA: dict[str, VariableSchema] = {
    **SYSTEM_VARIABLES,
    "sql_mode": (str, SQL_MODE, True),
    "version_comment": (str, f"Sluice {sluice.__version__}", False),
    "default_storage_engine": (str, "Sluice", True),
    "default_tmp_storage_engine": (str, "Sluice", True),
    "transaction_isolation": (str, "REPEATABLE-READ", True),
    "tx_isolation": (str, "REPEATABLE-READ", True),  # MySQL 5.7's name
    "tx_read_only": (bool, False, True),
    "character_set_system": (str, "utf8mb3", False),
    "character_set_filesystem": (str, "binary", True),
    "collation_database": (str, "utf8mb4_general_ci", True),
    "div_precision_increment": (int, 4, True),
    "explicit_defaults_for_timestamp": (bool, True, True),
    "foreign_key_checks": (bool, True, True),
    "group_concat_max_len": (int, 1024, True),
    "have_query_cache": (str, "NO", False),
    "hostname": (str, "localhost", False),
    "innodb_lock_wait_timeout": (int, 50, True),
    "lc_messages": (str, "en_US", True),
    "lc_time_names": (str, "en_US", True),
    "max_connections": (int, 151, True),
    "net_read_timeout": (int, 30, True),
    "protocol_version": (int, 10, False),
    "query_cache_size": (int, 0, True),
    "query_cache_type": (str, "OFF", True),
    "session_track_gtids": (str, "OFF", True),
    "session_track_schema": (bool, True, True),
    "session_track_state_change": (bool, False, True),
    "session_track_system_variables": (str, "", True),
    "session_track_transaction_info": (str, "OFF", True),
    "sql_notes": (bool, True, True),
    "sql_quote_show_create": (bool, True, True),
    "sql_safe_updates": (bool, False, True),
    "sql_warnings": (bool, False, True),
    "storage_engine": (str, "Sluice", True),
    "time_format": (str, "%H:%i:%s", False),
    "date_format": (str, "%Y-%m-%d", False),
    "datetime_format": (str, "%Y-%m-%d %H:%i:%s", False),
    "tmp_table_size": (int, 16777216, True),
    "unique_checks": (bool, True, True),
    "version_compile_machine": (str, "x86_64", False),
    "version_compile_os": (str, "Linux", False),
    "warning_count": (int, 0, False),
}


def evaluate(expression: exp.Expression, variables: Variables) -> Any:
    """The value of an expression of literals and ``@@variables``, as ``SET`` assigns it."""

    def value_of(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.SessionParameter):
            value: exp.Expression = value_to_expression(variables.get(node.name))
            return value
        return node

    try:
        result = execute(exp.select(expression.transform(value_of).as_("value")))
    except SqlglotError as exc:
        raise MysqlError(
            f"cannot evaluate {expression.sql(dialect='mysql')}: {exc}",
            code=ErrorCode.NOT_SUPPORTED_YET,
        ) from exc
    return result.rows[0][0]
