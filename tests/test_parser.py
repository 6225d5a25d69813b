"""Tokenizer, parser and printer: Splunk's two precedences, commands, errors."""

from __future__ import annotations

import pytest

from translator.errors import SPLSyntaxError
from translator.spl import ast, parse, print_pipeline
from translator.spl.ast import And, Compare, InList, Not, Or, Term, Value


def base(query: str) -> ast.SearchExpr:
    first = parse(query).commands[0]
    assert isinstance(first, ast.SearchCommand)
    assert first.expr is not None
    return first.expr


def cmp(f: str, v: str, op: str = "=", quoted: bool = False) -> Compare:
    return Compare(f, op, Value(v, quoted))


def test_search_or_binds_tighter_than_and() -> None:
    # a OR b c  ==  (a OR b) AND c
    assert base("a=1 OR b=2 c=3") == And((Or((cmp("a", "1"), cmp("b", "2"))), cmp("c", "3")))
    # explicit AND is the same lowest level
    assert base("a=1 OR b=2 AND c=3") == And((Or((cmp("a", "1"), cmp("b", "2"))), cmp("c", "3")))


def test_search_not_binds_tightest() -> None:
    assert base("NOT a=1 OR b=2") == Or((Not(cmp("a", "1")), cmp("b", "2")))
    assert base("NOT (a=1 OR b=2)") == Not(Or((cmp("a", "1"), cmp("b", "2"))))


def test_lowercase_or_is_a_term() -> None:
    assert base("a or b") == And((Term(Value("a")), Term(Value("or")), Term(Value("b"))))


def test_where_uses_usual_precedence() -> None:
    cmd = parse("| where a=1 OR b=2 AND NOT c=3").commands[0]
    assert isinstance(cmd, ast.WhereCommand)
    e = cmd.expr
    assert isinstance(e, ast.Binary) and e.op == "or"
    assert isinstance(e.right, ast.Binary) and e.right.op == "and"
    assert isinstance(e.right.right, ast.Unary) and e.right.right.op == "not"


def test_in_list_and_operators() -> None:
    assert base('f IN (a, "b*") g!=2 h>=3') == And(
        (InList("f", (Value("a"), Value("b*", True))), cmp("g", "2", "!="), cmp("h", "3", ">="))
    )


def test_quoted_escapes_and_unquoted_escaped_quote() -> None:
    assert base(r'f="a\"b\\c"') == cmp("f", 'a"b\\c', quoted=True)
    assert base(r"f=*\"privileged\":true*") == cmp("f", '*"privileged":true*')


def test_value_may_hold_balanced_parentheses() -> None:
    assert base("(p=*GetCurrent()* OR q=1)") == Or((cmp("p", "*GetCurrent()*"), cmp("q", "1")))


def test_subsearch() -> None:
    e = base("a=1 [search b=2 | fields c]")
    assert isinstance(e, And) and isinstance(e.operands[1], ast.Subsearch)


def test_stats_and_tstats() -> None:
    p = parse(
        "| tstats summariesonly=false count min(_time) as firstTime from datamodel=Endpoint.Processes "
        "where Processes.process_name=cmd.exe by _time span=1h, Processes.dest | stats dc(x) as n by a, b"
    )
    t, s = p.commands
    assert isinstance(t, ast.TstatsCommand)
    assert t.datamodel == "Endpoint.Processes"
    assert t.by == ("_time", "Processes.dest")
    assert t.by_options == (ast.Option("span", Value("1h")),)
    assert t.where == cmp("Processes.process_name", "cmd.exe")
    assert t.aggregations[1] == ast.Aggregation("min", ast.Field("_time"), "firstTime")
    assert isinstance(s, ast.StatsCommand) and s.by == ("a", "b")


def test_eval_expression_grammar() -> None:
    cmd = parse('| eval x=if(match(lower(a), "^x"), b . "-" . c, 1 + 2 * 3), \'y z\'=-1').commands[0]
    assert isinstance(cmd, ast.EvalCommand)
    assert [a.field for a in cmd.assignments] == ["x", "y z"]
    call = cmd.assignments[0].expr
    assert isinstance(call, ast.Call) and call.name == "if" and len(call.args) == 3
    arith = call.args[2]
    assert arith == ast.Binary("+", ast.Num("1"), ast.Binary("*", ast.Num("2"), ast.Num("3")))


def test_unknown_command_kept_verbatim() -> None:
    p = parse('a=1 | frobnicate x="[a|b]" (y) | table a')
    assert p.commands[1] == ast.GenericCommand("frobnicate", 'x="[a|b]" (y)')
    assert isinstance(p.commands[2], ast.FieldListCommand)


def test_option_commands_follow_the_table() -> None:
    p = parse('a=1 | rex field=x max_match=0 "(?<y>[^|]+)" | bucket span=5m _time | dedup host, user')
    rex, bucket, dedup = p.commands[1:]
    assert rex == ast.ArgsCommand(
        "rex",
        (ast.Option("field", ast.Value("x")), ast.Option("max_match", ast.Value("0"))),
        (ast.Value("(?<y>[^|]+)", quoted=True),),
    )
    assert isinstance(bucket, ast.ArgsCommand) and bucket.option("span") == "5m"
    assert [a.text for a in bucket.args] == ["_time"]
    assert isinstance(dedup, ast.ArgsCommand) and [a.text for a in dedup.args] == ["host", "user"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('a=1 | rex fieldd=x "(?<y>.)"', "unknown rex option 'fieldd'"),
        ("| tstats summaries_only=t count from datamodel=Endpoint.Processes", "unknown tstats option 'summaries_only'"),
        ("a=1 | stats bogus=1 count", "unknown stats option 'bogus'"),
        ("a=1 | mvexpand", "mvexpand needs 1 argument"),
        ('a=1 | rex field=x "a" "b"', "rex takes at most 1 argument"),
        ("a=1 | lookup t OUTPUT b", "lookup t names no input field"),
        ("a=1 | join user", "join needs a [subsearch]"),
        ("a=1 | append x [search b]", "append expects options"),
        ("a=1 | replace a b", "replace expects 'OLD with NEW'"),
    ],
)
def test_command_argument_errors(query: str, message: str) -> None:
    with pytest.raises(SPLSyntaxError) as err:
        parse(query)
    assert message in str(err.value)
    assert err.value.location is not None and err.value.location.line == 1


def test_unknown_option_error_names_line_and_column() -> None:
    with pytest.raises(SPLSyntaxError) as err:
        parse("a=1\n| bin spann=5m _time")
    loc = err.value.location
    assert loc is not None and (loc.line, loc.column) == (2, 7)


def test_lookup_structure() -> None:
    cmd = parse("a=1 | lookup update=true t f1 AS x, f2 OUTPUTNEW o1 as y o2").commands[1]
    assert cmd == ast.LookupCommand(
        (ast.Option("update", ast.Value("true")),),
        "t",
        (ast.FieldAs("f1", "x"), ast.FieldAs("f2")),
        "OUTPUTNEW",
        (ast.FieldAs("o1", "y"), ast.FieldAs("o2")),
    )


def test_join_holds_a_parsed_subsearch() -> None:
    cmd = parse("a=1 | join type=outer max=0 user, host [| tstats count from datamodel=X.Y by user host]").commands[1]
    assert isinstance(cmd, ast.SubpipelineCommand)
    assert cmd.fields == ("user", "host") and [o.key for o in cmd.options] == ["type", "max"]
    inner = cmd.pipeline.commands[0]
    assert isinstance(inner, ast.TstatsCommand) and inner.datamodel == "X.Y" and inner.by == ("user", "host")


def test_sort_keys_and_signs() -> None:
    cmd = parse("a=1 | sort 20 - count, num(size) -_time, user").commands[1]
    assert cmd == ast.SortCommand(
        (
            ast.SortKey("count", True),
            ast.SortKey("size", False, "num"),
            ast.SortKey("_time", True),
            ast.SortKey("user"),
        ),
        20,
    )


def test_transaction_bounds_are_search_expressions() -> None:
    cmd = parse('a=1 | transaction user startsWith=(EventCode=4781 x="y z") maxspan=2m').commands[1]
    assert isinstance(cmd, ast.TransactionCommand) and cmd.fields == ("user",)
    assert cmd.starts_with == ast.And(
        (ast.Compare("EventCode", "=", ast.Value("4781")), ast.Compare("x", "=", ast.Value("y z", True)))
    )
    assert cmd.ends_with is None and cmd.options == (ast.Option("maxspan", ast.Value("2m")),)


def test_regex_foreach_replace_mstats() -> None:
    p = parse(
        'a=1 | regex f!="^x\\d" | foreach * [eval <<FIELD>>=if(<<FIELD>>="null",null(),<<FIELD>>)]'
        ' | replace "::ffff:*" with *, a with b in src, dest'
        " | mstats avg(cpu) as cpu where index=m by host span=1m"
    )
    regex, foreach, replace, mstats = p.commands[1:]
    assert regex == ast.RegexCommand("^x\\d", "f", negated=True)
    assert isinstance(foreach, ast.ForeachCommand) and foreach.template.startswith("eval <<FIELD>>=")
    assert isinstance(replace, ast.ReplaceCommand) and replace.fields == ("src", "dest")
    assert replace.pairs[0] == (ast.Value("::ffff:*", True), ast.Value("*"))
    assert isinstance(mstats, ast.MstatsCommand) and mstats.by == ("host",)
    assert mstats.by_options == (ast.Option("span", ast.Value("1m")),)


@pytest.mark.parametrize(
    "query",
    [
        'a=1 OR b="x y" c IN (1, 2) NOT d!=3 | stats count by e',
        "| tstats count from datamodel=Web where Web.url=*x* by Web.src span=1d",
        '| where (a > 1 OR b < 2) AND c == "q" | eval z = a . "-" . b, w=-(1 + 2)',
        "x | rename a.* as *, b as c | fillnull value=0 f g | table a b | fields - c",
        "(a=1 b=2) OR c=3 | search NOT (d=4 OR e=5)",
        'a | rex field=x "(?<y>[^\\"]+)" | lookup t a AS b OUTPUT c | sort - count, +user | dedup a,b',
        'a | join type=inner k [search b | stats count by k] | transaction k startswith=(x="1") maxspan=1m',
        'a | regex "x|y" | replace "a b" with c in d | foreach * [eval <<FIELD>>="[x]"] | mstats count where i=m',
        # constructs of current content
        'a | where !match(x, "y") AND !(b > 1)',
        "| inputlookup append=t T where isutility=TRUE OR (a=b c!=d)",
        'a | fillnull f1 f2 value="0"',
        "a user=$result.user$ | where dest == $result.dest$",
    ],
)
def test_printer_round_trip(query: str) -> None:
    tree = parse(query)
    assert parse(print_pipeline(tree)) == tree


@pytest.mark.parametrize(
    ("query", "message", "column"),
    [
        ('a="unclosed', "unbalanced quote", 3),
        ("a=1 (b=2", "unbalanced '('", 5),
        ("a=1 b=2)", "unexpected ')'", 8),
        ("a= ", "dangling operator", 2),
        ("a=1 OR", "dangling OR", 5),
        ("a=1 | where x >", "incomplete expression", 16),
        ("a=1 | stats", "needs at least one aggregate", 12),
        ("a=1 | ", "expected a command name", 7),
    ],
)
def test_errors_name_line_and_column(query: str, message: str, column: int) -> None:
    with pytest.raises(SPLSyntaxError) as info:
        parse(query)
    assert message in str(info.value)
    assert info.value.location is not None
    assert (info.value.location.line, info.value.location.column) == (1, column)


def test_error_on_second_line() -> None:
    with pytest.raises(SPLSyntaxError) as info:
        parse('a=1\n  | where b="x')
    assert info.value.location is not None
    assert (info.value.location.line, info.value.location.column) == (2, 13)


def test_field_ending_in_bang_round_trips() -> None:
    tree = parse("a y! =2")  # the field is `y!`, not `y` with `!=`
    assert tree.commands[0].expr.operands[1] == Compare("y!", "=", Value("2"))  # type: ignore[union-attr]
    assert parse(print_pipeline(tree)) == tree


# -- constructs of current ESCU content -----------------------------------------------------------


def test_bang_is_not_in_expressions() -> None:
    where = parse('a | where !match(x, "y") AND b != 2').commands[1]
    assert isinstance(where, ast.WhereCommand)
    assert where.expr == ast.Binary(
        "and",
        ast.Unary("not", ast.Call("match", (ast.Field("x"), ast.Str("y")))),
        ast.Binary("!=", ast.Field("b"), ast.Num("2")),
    )
    ev = parse("a | eval z=if(!isnull(y), 1, 0)").commands[1]
    assert isinstance(ev, ast.EvalCommand)
    assert ev.assignments[0].expr == ast.Call(
        "if", (ast.Unary("not", ast.Call("isnull", (ast.Field("y"),))), ast.Num("1"), ast.Num("0"))
    )


def test_inputlookup_where_clause_and_options_on_either_side() -> None:
    cmd = parse("| inputlookup append=t remote_tools where isutility=TRUE OR (a=b c!=d) max=5").commands[0]
    assert isinstance(cmd, ast.InputlookupCommand)
    assert cmd.table == "remote_tools"
    assert [o.key for o in cmd.options] == ["append"]
    either = Or((cmp("isutility", "TRUE"), And((cmp("a", "b"), cmp("c", "d", "!=")))))
    assert cmd.where == And((either, cmp("max", "5")))  # after WHERE, everything is the search
    later = parse("a | inputlookup baseline append=t | stats count").commands[1]
    assert isinstance(later, ast.InputlookupCommand) and [o.key for o in later.options] == ["append"]
    assert later.where is None
    with pytest.raises(SPLSyntaxError, match="needs a search"):
        parse("| inputlookup t where")


def test_fillnull_takes_value_before_or_after_the_fields() -> None:
    after = parse('a | fillnull f1 f2 value="0"').commands[1]
    before = parse('a | fillnull value="0" f1, f2').commands[1]
    assert after == before == ast.FillnullCommand(Value("0", True), ("f1", "f2"))


def test_tokens_are_literals_and_listed() -> None:
    tree = parse("a user=$result.user$ | where dest=$result.dest$ | eval x=$dest$")
    where = tree.commands[1]
    assert isinstance(where, ast.WhereCommand)
    assert where.expr == ast.Binary("=", ast.Field("dest"), ast.TokenRef("$result.dest$"))
    assert isinstance(where.expr.right, ast.Str)  # consumers read it as the literal text
    assert ast.tokens(tree) == ["$result.user$", "$result.dest$", "$dest$"]
    assert ast.Value("$x$").token == "x" and ast.Value("a$x$").token is None


@pytest.mark.parametrize(
    "query",
    [
        "a=1 " + "(" * 300 + "b=2" + ")" * 300,
        "a | where " + "(" * 300 + "b=2" + ")" * 300,
        "a | eval x=" + "lower(" * 300 + "b" + ")" * 300,
        "a " + "NOT " * 300 + "b=1",
        "a | eval y=" + "- " * 300 + "1",
    ],
)
def test_deep_nesting_is_an_error_with_its_place_not_a_stack_overflow(query: str) -> None:
    with pytest.raises(SPLSyntaxError, match="nested deeper than 50") as info:
        parse(query)
    assert info.value.location is not None and info.value.location.column > 1


def test_nesting_within_the_limit_parses() -> None:
    tree = parse("a | where " + "(" * 49 + "b=2" + ")" * 49)
    assert isinstance(tree.commands[1], ast.WhereCommand)
