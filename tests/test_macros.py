"""Macro expansion: arguments, nesting, guards, strings, comments, built-ins."""

from __future__ import annotations

import pytest

from translator.errors import MacroError, SPLSyntaxError
from translator.spl import Macro, MacroExpander, parse


def expander(*macros: Macro) -> MacroExpander:
    return MacroExpander({m.key: m for m in macros})


def test_arguments_and_nesting() -> None:
    ex = expander(
        Macro("outer", "`inner($x$)` b=$y$", ("x", "y")),
        Macro("inner", "a=$v$", ("v",)),
    )
    assert ex.expand('`outer(1, "two, three")` | stats count').text == 'a=1 b="two, three" | stats count'


def test_same_name_different_arity() -> None:
    ex = expander(Macro("m", "zero"), Macro("m", "one=$a$", ("a",)))
    assert ex.expand("`m` `m(x)`").text == "zero one=x"


def test_backticks_in_strings_are_literal_and_comments_removed() -> None:
    ex = expander(Macro("m", "x=1"))
    out = ex.expand('`m` f="a`b`c" ```a comment with `m` inside``` g=2').text
    assert out == 'x=1 f="a`b`c"  g=2'


def test_unknown_macro_is_named_with_location() -> None:
    with pytest.raises(MacroError) as info:
        expander().expand("a=1\n  `nope(x)`")
    assert info.value.name == "nope"
    assert "unknown macro `nope` with 1 argument(s)" in str(info.value)
    assert info.value.location is not None
    assert (info.value.location.line, info.value.location.column) == (2, 3)


def test_wrong_arity_says_what_exists() -> None:
    with pytest.raises(MacroError, match=r"defined with 1 argument"):
        expander(Macro("m", "$a$", ("a",))).expand("`m`")


def test_recursion_guard() -> None:
    ex = expander(Macro("a", "`b`"), Macro("b", "`a`"))
    with pytest.raises(MacroError, match="recursive macro expansion: a -> b -> a"):
        ex.expand("`a`")


def test_unbalanced_backtick() -> None:
    with pytest.raises(MacroError, match="unbalanced backtick"):
        expander().expand("a=1 `m")


def test_builtins_and_generated_filter() -> None:
    out = expander().expand(
        '`drop_dm_object_name("Processes")` | `security_content_ctime(firstTime)` | `my_detection_filter`'
    )
    assert out.text == ('rename Processes.* as * | convert timeformat="%Y-%m-%dT%H:%M:%S" ctime(firstTime) | search *')
    assert out.macros_used == ["drop_dm_object_name", "security_content_ctime", "my_detection_filter"]


def test_content_definition_overrides_builtin() -> None:
    ex = expander(Macro("my_detection_filter", "search user!=svc"))
    assert ex.expand("`my_detection_filter`").text == "search user!=svc"


def test_parse_error_inside_macro_points_at_the_call() -> None:
    ex = expander(Macro("broken", 'f="unclosed'))
    exp = ex.expand("a=1\n| search `broken`")
    with pytest.raises(SPLSyntaxError) as info:
        parse(exp.text, "d.yml", exp.location)
    loc = info.value.location
    assert loc is not None and (loc.line, loc.column) == (2, 10)
    assert "in macro `broken`" in loc.origin
