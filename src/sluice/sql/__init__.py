"""Pipeline SQL: parse statements to an AST and render the AST back to canonical SQL."""

from sluice.sql import ast
from sluice.sql.lexer import is_pipeline_statement, split_statements
from sluice.sql.parser import parse
from sluice.sql.render import render

__all__ = ["ast", "is_pipeline_statement", "parse", "render", "split_statements"]
