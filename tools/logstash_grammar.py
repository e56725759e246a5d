"""Syntax check of Logstash pipeline configs, without Logstash.

The grammar below is Logstash's own (logstash-core/lib/logstash/config/
grammar.treetop, a treetop PEG), transcribed rule for rule into parsimonious,
a PEG library with the same semantics (ordered choice, lookahead, the whole
input must be consumed). A hand-written or regex checker would accept what
Logstash rejects; the Python configuration-file parsers on PyPI target other
formats. On top of the grammar, regular-expression literals in conditionals
must compile (Python's ``re`` as a stand-in for Logstash's Ruby/Java engines:
it catches unbalanced groups and brackets, not every dialect difference).

Usage: ``python -m tools.logstash_grammar logstash/pipeline/*.conf``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from parsimonious.exceptions import IncompleteParseError, ParseError
from parsimonious.grammar import Grammar
from parsimonious.nodes import Node

# Rule names follow grammar.treetop; `if`/`else` are renamed (*_branch) only because
# they are Python keywords.
LOGSTASH_GRAMMAR = Grammar(r'''
    config = cs plugin_section cs (cs plugin_section)* cs
    newline_or_eoi = ("\r"? "\n") / !~"."s
    comment = (whitespace? "#" ~"[^\r\n]*" newline_or_eoi)+
    cs = (comment / whitespace)*
    whitespace = ~"[ \t\r\n]+"
    plugin_section = plugin_type cs "{" cs (branch_or_plugin cs)* "}"
    branch_or_plugin = branch / plugin
    plugin_type = "input" / "filter" / "output"
    plugin = name cs "{" cs attributes? cs "}"
    attributes = attribute (whitespace cs attribute)*
    name = ~"[A-Za-z0-9_-]+" / string
    attribute = name cs "=>" cs value
    value = plugin / bareword / string / number / array / hash
    bareword = ~"[A-Za-z_][A-Za-z0-9_]+"
    double_quoted_string = "\"" ("\\\"" / (!"\"" ~"."s))* "\""
    single_quoted_string = "'" ("\\'" / (!"'" ~"."s))* "'"
    string = double_quoted_string / single_quoted_string
    regexp = "/" ("\\/" / (!"/" ~"."s))* "/"
    number = "-"? ~"[0-9]+" ("." ~"[0-9]*")?
    array = "[" cs (value (cs "," cs value)*)? cs "]"
    hash = "{" cs hashentries? cs "}"
    hashentries = hashentry (cs hashentry)*
    hashentry = (number / bareword / string) cs "=>" cs value
    branch = if_branch (cs else_if_branch)* (cs else_branch)?
    if_branch = "if" cs condition cs "{" cs (branch_or_plugin cs)* "}"
    else_if_branch = "else" cs "if" cs condition cs "{" cs (branch_or_plugin cs)* "}"
    else_branch = "else" cs "{" cs (branch_or_plugin cs)* "}"
    condition = expression (cs boolean_operator cs expression)*
    expression = ("(" cs condition cs ")") / negative_expression / in_expression / not_in_expression
                 / compare_expression / regexp_expression / rvalue
    negative_expression = ("!" cs "(" cs condition cs ")") / ("!" cs selector)
    in_expression = rvalue cs in_operator cs rvalue
    not_in_expression = rvalue cs not_in_operator cs rvalue
    in_operator = "in"
    not_in_operator = "not " cs "in"
    rvalue = string / number / selector / array / method_call / regexp
    method_call = method cs "(" cs (rvalue (cs "," cs rvalue)*)? cs ")"
    method = bareword
    compare_expression = rvalue cs compare_operator cs rvalue
    compare_operator = "==" / "!=" / "<=" / ">=" / "<" / ">"
    regexp_expression = rvalue cs regexp_operator cs (string / regexp)
    regexp_operator = "=~" / "!~"
    boolean_operator = "and" / "or" / "xor" / "nand"
    selector = selector_element+
    selector_element = "[" ~"[^\\]\\[,]+" "]"
''')


@dataclass(frozen=True)
class ConfigError:
    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


def check_text(text: str, path: str = "<config>") -> list[ConfigError]:
    """Errors in a pipeline config; an empty list means Logstash's grammar accepts it."""
    try:
        tree = LOGSTASH_GRAMMAR.parse(text)
    except (ParseError, IncompleteParseError) as e:
        line, column = e.line(), e.column()
        what = "unexpected text" if isinstance(e, IncompleteParseError) else "syntax error"
        snippet = text[e.pos:e.pos + 30].split("\n")[0]
        return [ConfigError(path, line, column, f"{what} at {snippet!r} (rule {e.expr.name or e.expr.as_rule()!s})")]
    return list(_regexp_errors(tree, text, path))


def _regexp_errors(tree: Node, text: str, path: str) -> Iterator[ConfigError]:
    for node in _walk(tree):
        if node.expr_name != "regexp":
            continue
        body = node.text[1:-1].replace("\\/", "/")
        try:
            re.compile(body)
        except re.error as e:
            line = text.count("\n", 0, node.start) + 1
            column = node.start - text.rfind("\n", 0, node.start)
            yield ConfigError(path, line, column, f"invalid regular expression {node.text}: {e}")


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.children)


def check_file(path: Path) -> list[ConfigError]:
    return check_text(path.read_text(encoding="utf-8"), str(path))


def main(argv: list[str]) -> int:
    errors = [err for arg in argv for err in check_file(Path(arg))]
    for err in errors:
        print(err, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
