"""Processing pipelines of our own for the Elastic targets (lucene, eql, esql, opensearch_lucene).

pySigma's ``ecs_windows`` names the fields; what it leaves wrong shows up when the
emitted queries run on Elastic's view of events (:mod:`translator.engine.elastic`):

- **Field names** (``elastic_fields``, before ``ecs_windows``): each field goes where the
  integrations put it for every event log and code the rule reads, found by probing
  :mod:`translator.events.elastic` with a marker value (one table for both directions).
- **Categories**: a ``process_creation`` rule becomes a query over every event that
  has ``process.command_line``. ``elastic_categories`` adds, per category, the event
  logs (``winlog.channel``) and event codes (``event.code``, a keyword: strings) the
  logsource table says it means, the same table the evaluator reads.
- **Case**: Sigma compares without case; ``keyword`` and ``wildcard`` fields compare
  with it. Lucene gets a regular expression with both cases of each letter
  (``[wW][hH]...``), or the plain term on a ``.caseless`` field (its normalizer
  lower-cases the query too); ES|QL gets ``to_lower(field) like`` (:class:`EsqlBackend`);
  EQL's ``:`` and ``like~`` already ignore it.
- **Regular expressions**: Sigma's are PCRE, searched anywhere in the value;
  Lucene's (used by all three languages) match the whole value and have no
  ``(?i)``, ``(?:``, anchors or lazy quantifiers. They are rewritten from
  Python's parse of the pattern; what Lucene cannot say (look-arounds, word
  boundaries, back-references) fails the rule for that target with the reason.
- **Field types**: a wildcard on an ``ip`` field is refused by Elasticsearch: an
  IPv4 prefix on octet boundaries (``10.``, ``192.168.``) becomes its CIDR network;
  ``*`` on a numeric or ip field (how EQL says exists) becomes a range or
  ``0.0.0.0/0``. A value the integrations drop (``""``, ``-``) is a test for the
  field's absence. A ``text`` field (PowerShell script blocks) is matched by words
  in Lucene: only a ``contains`` of one word carries over; EQL cannot search it.

Anything else that cannot be made faithful fails the rule for the target, with a
reason naming the field, rather than emitting a query that selects other events.
"""

from __future__ import annotations

import ipaddress
import re
import re._constants as sre_c  # the parse tree of Python's own regex parser
import re._parser as sre_parse
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar

from sigma.backends.elasticsearch import EqlBackend as _EqlBackend
from sigma.backends.elasticsearch import ESQLBackend as _EsqlBackend
from sigma.conditions import ConditionAND, ConditionOR
from sigma.conversion.deferred import DeferredQueryExpression
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError, SigmaTransformationError
from sigma.processing.conditions import LogsourceCondition, RuleProcessingCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation
from sigma.processing.transformations.base import DetectionItemTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from translator.data import logsource_table
from translator.emit.pipelines import category_sources
from translator.engine.sigma_eval import needed_values
from translator.events.elastic import (
    NUMBERS,
    STRINGS,
    TEXTS,
    Base,
    alias_definition,
    channel_base,
    coalesced,
    dropped_values,
    field_type,
    has_view,
    json_logsources,
    parsed_away,
    shared_with,
    source_names,
    split_account,
    stream_base,
    stream_name,
    stream_route,
    streams_for,
    unnamed_data,
    value_maps,
)
from translator.sigma.logsource import channels_by_service
from translator.sigma.rule import render

LUCENE_RESERVED = set('.?+*|{}[]()"\\#@&<>~')
# per text-field analyser, the values made only of characters it keeps inside words
WORDS = {"standard": r"[A-Za-z0-9_]+", "powershell_script": r"[A-Za-z0-9_-]+"}


def elastic_categories() -> ProcessingPipeline:
    """Each category of an event-log product (Windows, Sysmon for Linux) restricted to its event
    logs and event codes (Elastic's field names): every source, Security 4688 too (Elastic names its
    fields as it names Sysmon's)."""
    items = [
        ProcessingItem(
            identifier=f"translator_elastic_{product}_{category}",
            transformation=AddConditionTransformation({"winlog.channel": chans, "event.code": [str(c) for c in codes]}),
            rule_conditions=[LogsourceCondition(product=product, category=category), ElasticView()],
        )
        for product in EVENT_LOG_PRODUCTS
        for category, (chans, codes) in sorted(category_sources(renamed=True, product=product).items())
        if chans and codes
    ]
    covered = _ecs_windows_services()
    items += [
        ProcessingItem(  # a Windows service ecs_windows does not restrict to its event log
            identifier=f"translator_elastic_windows_{service}",
            transformation=AddConditionTransformation({"winlog.channel": chans}),
            rule_conditions=[LogsourceCondition(product="windows", service=service)],
        )
        for (product, service), chans in sorted(channels_by_service().items())
        if product == "windows" and service not in covered and chans
    ]
    items += [
        ProcessingItem(
            identifier=f"translator_elastic_{logsource}",
            transformation=JsonDatasets(),
            rule_conditions=[LogsourceCondition(product=product, service=service), ElasticView()],
        )
        for logsource in json_logsources()
        for product, service in [logsource.split("/", 1)]
    ]
    return ProcessingPipeline(
        name="translator: event-log categories to Elastic event logs and codes, JSON sources to data streams",
        priority=25,
        items=items,
    )


@cache
def _ecs_windows_services() -> frozenset[str]:
    """The Windows services pySigma's ecs_windows restricts to their event log itself."""
    from sigma.pipelines.elasticsearch.windows import ecs_windows

    return frozenset(
        cond.service
        for item in ecs_windows().items
        if isinstance(item.transformation, AddConditionTransformation)
        for cond in item.rule_conditions
        if isinstance(cond, LogsourceCondition) and cond.product == "windows" and cond.service
    )


def elastic_lucene() -> ProcessingPipeline:
    return _values_pipeline("lucene")


def elastic_eql() -> ProcessingPipeline:
    return _values_pipeline("eql")


def elastic_esql() -> ProcessingPipeline:
    return _values_pipeline("esql")


def _values_pipeline(dialect: str) -> ProcessingPipeline:
    return elastic_categories() + ProcessingPipeline(
        name=f"translator: Sigma's value semantics on Elastic's field types ({dialect})",
        priority=30,  # after ecs_windows (20): the fields have their ECS names and types
        items=[
            ProcessingItem(
                identifier=f"translator_elastic_values_{dialect}",
                transformation=ElasticValues(dialect),
                rule_conditions=[ElasticView()],
            )
        ],
    )


@dataclass
class JsonDatasets(AddConditionTransformation):
    """``event.dataset`` naming the data streams the rule reads (those its route values allow)."""

    conditions: dict[str, Any] = field(default_factory=dict)

    def apply(self, rule: Any) -> None:
        if not isinstance(rule, SigmaRule):
            return
        streams = sorted({s for base, _raw in rule_sources(rule) if (s := stream_name(base))})
        if not streams:
            return
        self.conditions = {"event.dataset": streams[0] if len(streams) == 1 else streams}
        super().apply(rule)


@dataclass
class ElasticValues(DetectionItemTransformation):
    """Each value of a detection item rewritten for the field's Elasticsearch type (module docstring)."""

    dialect: str = "lucene"
    _ignore: set[str] = field(default_factory=set)
    _dropped: frozenset[str] = frozenset()

    def apply(self, rule: Any) -> None:
        sources = rule_sources(rule) if isinstance(rule, SigmaRule) else []
        self._dropped = dropped_values(sources[0][0] if sources else None)
        super().apply(rule)

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> None:
        name = detection_item.field
        if name is None:  # keywords: searched in every field; left as the backend writes them
            return
        if name.endswith(".caseless") and any(
            isinstance(v, SigmaRegularExpression | SigmaCasedString) for v in detection_item.value
        ):  # the lower-cased copy cannot answer a case-sensitive test: the field itself can
            name = detection_item.field = name.removesuffix(".caseless")
        values = [self._value(name, v) for v in detection_item.value]
        detection_item.value = [v for group in values for v in group]
        self.processing_item_applied(detection_item)

    def _value(self, name: str, value: Any) -> list[Any]:
        kind = field_type(name, None)
        if kind.keyed and self.dialect != "lucene":
            raise SigmaTransformationError(
                f"ES|QL does not read flattened field {name}"
                if self.dialect == "esql"
                else f"EQL matches flattened field {name} by wildcard, which Elasticsearch refuses"
            )
        if kind.keyed and isinstance(value, SigmaCasedString):  # a key's term compares with case already
            plain = SigmaString()
            plain.s = tuple(value.s)  # the same parts, wildcards kept, without the |cased marker
            return [self._keyed_value(name, plain, cased=True)]
        if isinstance(value, SigmaRegularExpression):
            return [self._regex(name, kind.kind, value)]
        if isinstance(value, SigmaCasedString):  # Lucene's backend refuses |cased; a regex keeps the case
            return [SigmaRegularExpression(caseless_regex(value, cased=True))] if self.dialect == "lucene" else [value]
        if isinstance(value, SigmaNumber) and kind.kind in STRINGS:
            return [SigmaString(str(value))]  # a keyword holds the number's text (event.code "4688")
        if isinstance(value, SigmaBool) and kind.kind in STRINGS:
            value = SigmaString("true" if value.boolean else "false")  # event data holds the word
        if not isinstance(value, SigmaString):
            return [value]
        if not value.contains_special() and value.to_plain() in self._dropped:
            return [SigmaNull()]  # the integrations drop "" and "-": in Elastic the field is absent
        replaced = value_maps().get(name, {})
        if not value.contains_special() and value.to_plain().lower() in replaced:  # Initiated true -> egress
            stored = SigmaString(replaced[value.to_plain().lower()])
            return _bool_value(name, stored) if kind.kind == "boolean" else [stored]
        if kind.keyed:
            return [self._keyed_value(name, value)]
        if kind.kind == "boolean":
            return _bool_value(name, value)
        if name == "event.dataset" and not value.contains_special():
            return [value]  # a data stream's name: lower-case, exactly
        if kind.kind == "ip":
            return _ip_value(name, value, whole=self.dialect == "eql")
        if kind.kind in NUMBERS:
            return _number_value(name, value)
        if kind.kind in TEXTS and self.dialect != "esql":
            return [self._text_value(name, value)]
        if name == "winlog.channel" and not value.contains_special():
            canonical = _channels().get(value.to_plain().lower())
            if canonical is not None:  # the event log's own spelling: an exact term matches it
                return [SigmaCasedString(canonical) if self.dialect == "esql" else SigmaString(canonical)]
        if self.dialect == "esql" or not _has_letters(value):
            return [value]  # ES|QL: our backend writes `to_lower(field) like` (EsqlBackend)
        if name.endswith(".caseless"):
            return [value]  # its normalizer lower-cases the query's terms too
        if self.dialect == "eql":
            if any(isinstance(p, str) and ("*" in p or "?" in p) for p in value.s):
                raise SigmaTransformationError(f"{name}: EQL wildcards cannot hold a literal * or ?")
            return [value]  # `:` and `like~` ignore case
        return [SigmaRegularExpression(caseless_regex(value))]

    def _keyed_value(self, name: str, value: SigmaString, cased: bool = False) -> Any:
        """A flattened field's key takes term, prefix and exists queries (Lucene only), compared
        with case: ``*`` alone (exists), or a value or prefix without letters unless ``|cased``."""
        parts = list(value.s)
        if parts == [SpecialChars.WILDCARD_MULTI]:
            return value
        body = parts[:-1] if parts and parts[-1] is SpecialChars.WILDCARD_MULTI else parts
        if all(isinstance(p, str) for p in body) and (cased or not _has_letters(value)):
            return value
        raise SigmaTransformationError(
            f"Elasticsearch compares flattened field {name} with case and takes no wildcard or regular "
            f"expression inside it: {value.to_plain()!r} cannot be matched without case"
        )

    def _text_value(self, name: str, value: SigmaString) -> Any:
        if self.dialect == "eql":
            raise SigmaTransformationError(f"EQL cannot search text field {name} (use --to esql)")
        parts = list(value.s)
        if (
            len(parts) == 3
            and parts[0] is SpecialChars.WILDCARD_MULTI
            and parts[2] is SpecialChars.WILDCARD_MULTI
            and isinstance(parts[1], str)
            and re.fullmatch(WORDS[field_type(name, None).analyzer], parts[1])
        ):
            return value  # a run of word characters lies inside one indexed word: Lucene finds it there
        raise SigmaTransformationError(
            f"Lucene matches text field {name} by words; {value.to_plain()!r} is not one word inside it (use --to esql)"
        )

    def _regex(self, name: str, kind: str, value: SigmaRegularExpression) -> Any:
        if kind in TEXTS and self.dialect != "esql":
            raise SigmaTransformationError(
                f"a regular expression on text field {name} is matched per word (use --to esql)"
            )
        if kind not in ("keyword", "wildcard", "constant_keyword", *TEXTS) or field_type(name, None).keyed:
            raise SigmaTransformationError(f"a regular expression on {kind} field {name} is refused by Elasticsearch")
        nocase = SigmaRegularExpressionFlag.IGNORECASE in value.flags
        try:
            regex = lucene_regex(value.regexp.to_plain(), nocase)
            if self.dialect == "eql" and '"' in regex:
                raise ValueError('the EQL backend cannot quote a " inside a regular expression')
            return SigmaRegularExpression(regex)
        except ValueError as exc:
            raise SigmaTransformationError(f"{name}: {exc}") from None


@cache
def _channels() -> dict[str, str]:
    """Known event log names, lower-cased -> as Windows spells them."""
    by_service = channels_by_service().items()
    names = [ch for (product, _s), chans in by_service if product in EVENT_LOG_PRODUCTS for ch in chans]
    return {n.lower(): n for n in names}


def _has_letters(value: SigmaString) -> bool:
    return any(isinstance(p, str) and any(c.lower() != c.upper() for c in p) for p in value.s)


def _ip_value(name: str, value: SigmaString, whole: bool = False) -> list[Any]:
    """An ip field's value: an address, or a network (``whole``: addresses as one-address networks,
    for EQL, which compares an ip field with networks only)."""
    parts = list(value.s)
    if parts == [SpecialChars.WILDCARD_MULTI]:
        return [SigmaCIDRExpression("0.0.0.0/0"), SigmaCIDRExpression("::/0")]
    if not value.contains_special():
        try:
            address = ipaddress.ip_address(value.to_plain())
            return [SigmaCIDRExpression(f"{address}/{address.max_prefixlen}")] if whole else [value]
        except ValueError:
            pass
    if len(parts) == 2 and isinstance(parts[0], str) and parts[1] is SpecialChars.WILDCARD_MULTI:
        octets = parts[0].split(".")
        if parts[0].endswith(".") and 1 < len(octets) <= 4 and all(o.isdigit() and int(o) < 256 for o in octets[:-1]):
            known = [int(o) for o in octets[:-1]]
            network = ".".join(map(str, known + [0] * (4 - len(known))))
            return [SigmaCIDRExpression(f"{network}/{8 * len(known)}")]
    raise SigmaTransformationError(
        f"{name} is an ip field in Elastic; {value.to_plain()!r} is not an address or network"
    )


def _bool_value(name: str, value: SigmaString) -> list[Any]:
    """A value on a boolean field: ``true``/``false`` as the boolean, ``*`` (present) as either."""
    if list(value.s) == [SpecialChars.WILDCARD_MULTI]:
        return [SigmaBool(True), SigmaBool(False)]
    plain = value.to_plain().lower() if not value.contains_special() else ""
    if plain in ("true", "false"):
        return [SigmaBool(plain == "true")]
    raise SigmaTransformationError(f"{name} is boolean in Elastic; {value.to_plain()!r} is neither true nor false")


def _number_value(name: str, value: SigmaString) -> list[Any]:
    if list(value.s) == [SpecialChars.WILDCARD_MULTI]:  # present: any number
        return [SigmaCompareExpression(SigmaNumber(-(2**63)), SigmaCompareExpression.CompareOperators.GTE)]
    plain = value.to_plain() if not value.contains_special() else ""
    try:
        return [SigmaNumber(int(plain, 16) if plain.lower().startswith("0x") else int(plain))]
    except ValueError:
        raise SigmaTransformationError(f"{name} is numeric in Elastic; {value.to_plain()!r} is not a number") from None


def _letter(c: str) -> str:
    if c.lower() != c.upper() and len(c.lower()) == 1 and len(c.upper()) == 1:
        return f"[{c.lower()}{c.upper()}]"
    return _lit(c)


def _lit(c: str) -> str:
    return "\\" + c if c in LUCENE_RESERVED else c


def caseless_regex(value: SigmaString, cased: bool = False) -> str:
    """A Sigma string (``*``/``?`` wildcards) as a whole-value Lucene regex that ignores case
    (``cased``: that keeps it)."""
    char = _lit if cased else _letter
    return render(value.s, ".*", ".", lambda text: "".join(map(char, text)))


# ---- PCRE (Sigma |re) -> Lucene regular expressions ----

# Lucene (8.6 on) reads Perl's class escapes itself, inside classes too
_CATEGORIES = {sre_c.CATEGORY_DIGIT: r"\d", sre_c.CATEGORY_WORD: r"\w", sre_c.CATEGORY_SPACE: r"\s"}
_NOT_CATEGORIES = {sre_c.CATEGORY_NOT_DIGIT: r"\D", sre_c.CATEGORY_NOT_WORD: r"\W", sre_c.CATEGORY_NOT_SPACE: r"\S"}


def lucene_regex(pattern: str, nocase: bool = False) -> str:
    """A Sigma regular expression (searched anywhere in the value) as the Lucene regex that matches
    the same whole values. ValueError when Lucene cannot express it."""
    try:
        tree = sre_parse.parse(pattern)
    except re.error as exc:
        raise ValueError(f"the regular expression does not parse: {exc}") from None
    flags = tree.state.flags
    nocase = nocase or bool(flags & re.IGNORECASE)
    if flags & re.MULTILINE:
        raise ValueError("a multi-line regular expression cannot be written for Lucene")
    return _search(list(tree), True, True, nocase)


def _is_group(item: Any) -> bool:
    return item[0] is sre_c.BRANCH or item[0] is sre_c.SUBPATTERN


def _search(items: list[Any], lead: bool, trail: bool, nocase: bool) -> str:
    """``items`` searched for: a leading ``.*`` unless a ``^`` anchors them (``lead``), a trailing
    one unless a ``$`` does (``trail``); anchors at the edges of a group are pushed into it."""
    if items and items[0] == (sre_c.AT, sre_c.AT_BEGINNING):
        lead, items = False, items[1:]
    if items and items[-1][0] is sre_c.AT and items[-1][1] in (sre_c.AT_END, sre_c.AT_END_STRING):
        trail, items = False, items[:-1]
    if not items:
        return ".*" if lead or trail else "()"
    if len(items) == 1 and items[0][0] is sre_c.BRANCH:
        return "(" + "|".join(_search(list(b), lead, trail, nocase) for b in items[0][1][1]) + ")"
    if len(items) == 1 and items[0][0] is sre_c.SUBPATTERN:
        _group, add, remove, sub = items[0][1]
        nocase = (nocase or bool(add & re.IGNORECASE)) and not remove & re.IGNORECASE
        return "(" + _search(list(sub), lead, trail, nocase) + ")"
    out = ""
    if _is_group(items[0]):
        out, items = _search(items[:1], lead, False, nocase), items[1:]
    elif lead:
        out = ".*"
    if items and _is_group(items[-1]) and len(items) > 1:
        return out + _seq(items[:-1], nocase) + _search(items[-1:], False, trail, nocase)
    if items and _is_group(items[-1]) and not out:
        return _search(items, False, trail, nocase)
    return out + _seq(items, nocase) + (".*" if trail else "")


def _seq(items: Any, nocase: bool) -> str:
    return "".join(_node(op, av, nocase) for op, av in items)


def _node(op: Any, av: Any, nocase: bool) -> str:
    if op is sre_c.LITERAL:
        c = chr(av)
        return _letter(c) if nocase else _lit(c)
    if op is sre_c.NOT_LITERAL:
        return "[^" + _class_chars([(sre_c.LITERAL, av)], nocase) + "]"
    if op is sre_c.ANY:
        return "."
    if op is sre_c.IN:
        negate = bool(av) and av[0][0] is sre_c.NEGATE
        body = av[1:] if negate else av
        if len(body) == 1 and body[0][0] is sre_c.CATEGORY and not negate:
            return _CATEGORIES.get(body[0][1]) or _NOT_CATEGORIES[body[0][1]]
        return ("[^" if negate else "[") + _class_chars(body, nocase) + "]"
    if op is sre_c.BRANCH:
        return "(" + "|".join(_seq(b, nocase) for b in av[1]) + ")"
    if op is sre_c.SUBPATTERN:
        _group, add, remove, sub = av
        if add & re.IGNORECASE:
            nocase = True
        if remove & re.IGNORECASE:
            nocase = False
        return "(" + _seq(sub, nocase) + ")"
    if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
        lo, hi, sub = av  # lazy or greedy: the same values match
        inner = _seq(sub, nocase)
        atoms = (sre_c.LITERAL, sre_c.NOT_LITERAL, sre_c.ANY, sre_c.IN, sre_c.CATEGORY, sre_c.SUBPATTERN)
        if not (len(sub) == 1 and sub[0][0] in atoms):
            inner = f"({inner})"
        if (lo, hi) == (0, sre_c.MAXREPEAT):
            return inner + "*"
        if (lo, hi) == (1, sre_c.MAXREPEAT):
            return inner + "+"
        if (lo, hi) == (0, 1):
            return inner + "?"
        return (
            inner + "{" + str(lo) + ("," if hi != lo else "") + ("" if hi in (lo, sre_c.MAXREPEAT) else str(hi)) + "}"
        )
    if op is sre_c.CATEGORY and (av in _CATEGORIES or av in _NOT_CATEGORIES):
        return _CATEGORIES.get(av) or _NOT_CATEGORIES[av]
    if op is sre_c.AT:
        raise ValueError("an anchor or word boundary inside the pattern cannot be written for Lucene")
    if op in (sre_c.ASSERT, sre_c.ASSERT_NOT):
        raise ValueError("Lucene regular expressions have no look-around")
    if op is sre_c.GROUPREF:
        raise ValueError("Lucene regular expressions have no back-references")
    raise ValueError(f"regex construct {op} cannot be written for Lucene")


def _class_chars(items: Any, nocase: bool) -> str:
    out = []
    for op, av in items:
        if op is sre_c.LITERAL:
            c = chr(av)
            out.append(_class_lit(c))
            if nocase and c.lower() != c.upper():
                out.append(_class_lit(c.swapcase()))
        elif op is sre_c.RANGE:
            lo, hi = chr(av[0]), chr(av[1])
            out.append(f"{_class_lit(lo)}-{_class_lit(hi)}")
            if nocase:
                for a, b in (("a", "z"), ("A", "Z")):
                    if lo <= b and hi >= a:  # the letters inside, in the other case
                        s, e = max(lo, a), min(hi, b)
                        out.append(f"{s.swapcase()}-{e.swapcase()}")
        elif op is sre_c.CATEGORY and (av in _CATEGORIES or av in _NOT_CATEGORIES):
            out.append(_CATEGORIES.get(av) or _NOT_CATEGORIES[av])
        else:
            raise ValueError(f"character class item {op} cannot be written for Lucene")
    return "".join(out)


def _class_lit(c: str) -> str:
    return "\\" + c if c in '[]\\^-"' else c


def elastic_fields() -> ProcessingPipeline:
    """The rule's field names as Elastic's integrations write them (for Windows before
    ``ecs_windows``, which leaves alone a name that already has its ECS or ``winlog`` form)."""
    return ProcessingPipeline(
        name="translator: field names as Elastic's integrations write them",
        priority=15,
        items=[
            ProcessingItem(
                identifier="translator_elastic_fields",
                transformation=ElasticFieldNames(),
                rule_conditions=[ElasticView()],
            )
        ],
    )


@dataclass
class ElasticView(RuleProcessingCondition):
    """A rule whose events Elastic's integrations are known to index: any Windows rule (what our
    table does not place, ``ecs_windows`` names), or a rule of another product whose every source
    has a data stream in ``data/elastic.yml``. Rules of other sources keep their field names."""

    def match(self, rule: Any) -> bool:
        if isinstance(rule, SigmaCorrelationRule):
            return any(self.match(r.rule) for r in rule.referenced_rules if hasattr(r, "rule"))
        return rule.logsource.product == "windows" or bool(rule_sources(rule))


@dataclass
class ElasticFieldNames(DetectionItemTransformation):
    """Each field renamed to where the integrations put it for every source (event log and code) the
    rule reads — a field they all share, ECS first (see :func:`translator.events.elastic.source_names`).
    Windows leaves to ``ecs_windows`` a field they share none of; elsewhere nothing follows, so that
    fails the rule. A field an integration parses into parts (Sysmon's ``Hashes``) fails it too: no
    Elastic field holds the value as written."""

    _sources: list[tuple[Base, dict[str, str]]] = field(default_factory=list)
    _windows: bool = True

    def apply(self, rule: Any) -> None:
        if isinstance(rule, SigmaCorrelationRule):  # its group-by and counted fields, from its rules'
            refs = [r.rule for r in rule.rules if isinstance(getattr(r, "rule", None), SigmaRule)]
            self._sources = [s for r in refs for s in rule_sources(r)]
            self._windows = not refs or any(r.logsource.product == "windows" for r in refs)
            if self._sources and not self._windows:  # Windows: ecs_windows names them
                rule.group_by = [self._place(f, in_group=True) for f in rule.group_by or []]
                ref = rule.condition.fieldref
                if isinstance(ref, str):
                    rule.condition.fieldref = self._place(ref, in_group=True)
                elif isinstance(ref, list):
                    rule.condition.fieldref = [self._place(f, in_group=True) for f in ref]
        else:
            self._sources = rule_sources(rule)
            self._windows = rule.logsource.product == "windows"
        super().apply(rule)

    def _place(self, name: str, in_group: bool = False) -> str:
        """Where the field is in every source's documents (ECS first), or ``name`` for Windows to
        leave to ``ecs_windows``; raises when no field holds it as written."""
        self._refuse(name)
        if in_group and any(coalesced(base, name) for base, _raw in self._sources):
            raise SigmaTransformationError(f"{name} is the first present of several fields: it cannot be grouped by")
        found = [source_names(base, raw.get(name, name)) for base, raw in self._sources]
        common = [f for f in found[0] if all(f in other for other in found[1:])]  # ECS fields first
        if common:
            return common[0]
        if not self._windows:
            raise SigmaTransformationError(
                f"{name}: no field of the documents Elastic's integration writes for these events holds it"
            )
        return name

    def _refuse(self, name: str) -> None:
        for base, raw in self._sources:
            if (definition := alias_definition(base, name)) is not None:
                raise SigmaTransformationError(
                    f"{name} is computed by the Splunk add-on ({definition}): no Elastic field holds it"
                )
            if (prefix := parsed_away(str(dict(base).get("Channel")), raw.get(name, name))) is not None:
                raise SigmaTransformationError(
                    f"Elastic's integration parses {name} into {prefix}.<algorithm>: the field as written is gone"
                )
            if (prefix := unnamed_data(base, raw.get(name, name))) is not None:
                raise SigmaTransformationError(
                    f"Elastic's Windows integration names unnamed Data elements {prefix}1, {prefix}2, ...: "
                    f"no one field holds {name}"
                )
            if (shared := shared_with(base, raw.get(name, name))) is not None:
                raise SigmaTransformationError(
                    f"Elastic's integration writes {name} and {', '.join(shared[1])} to {shared[0]}: "
                    "neither value is kept apart"
                )

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> SigmaDetection | None:
        name = detection_item.field
        if name is None or not self._sources or (self._windows and "." in name):
            return None
        self._refuse(name)
        paths = {tuple(coalesced(base, name)) for base, _raw in self._sources}
        if len(paths) == 1 and (chain := next(iter(paths))):
            return self._coalesce(detection_item, list(chain))
        splits = {split_account(base, raw.get(name, name)) for base, raw in self._sources}
        if len(splits) == 1 and (pair := next(iter(splits))):
            return self._split(detection_item, *pair)
        if len(splits) > 1:  # split in some event logs, whole in others: each said on its own
            return self._per_source(detection_item)
        placed = self._place(name)
        for value in detection_item.value:  # `a|fieldref: b` names a field on the other side too
            if isinstance(value, SigmaFieldReference) and not (self._windows and "." in value.field):
                value.field = self._place(value.field)
        if placed != name:
            detection_item.field = placed
            self.processing_item_applied(detection_item)
        return None

    def _per_source(self, item: SigmaDetectionItem) -> SigmaDetection:
        """The test said per event log and code (``winlog.channel`` and ``event.code`` with it), for a
        field the integrations keep differently across the rule's sources."""
        said: list[tuple[Base, SigmaDetectionItem | SigmaDetection]] = []
        everything = self._sources
        try:
            for base, raw in everything:
                self._sources = [(base, raw)]
                copy = SigmaDetectionItem(item.field, [], list(item.value))
                copy.modifiers = list(item.modifiers)
                said.append((base, self.apply_detection_item(copy) or copy))
        finally:
            self._sources = everything
        if len({_shape(test) for _base, test in said}) == 1:  # said alike everywhere (presence)
            return SigmaDetection([said[0][1]], item_linking=ConditionAND)
        branches: list[SigmaDetectionItem | SigmaDetection] = []
        for base, test in said:
            fields = dict(base)
            where = [
                SigmaDetectionItem("winlog.channel", [], [SigmaString(str(fields["Channel"]))]),
                SigmaDetectionItem("event.code", [], [SigmaString(str(fields["EventID"]))]),
            ]
            branches.append(SigmaDetection([*where, test], item_linking=ConditionAND))
        return SigmaDetection(branches, item_linking=ConditionOR)

    def _split(self, item: SigmaDetectionItem, domain: str, user: str) -> SigmaDetection:
        """A test on ``DOMAIN\\name`` the integration keeps as two fields, said on them: a value
        with one backslash on both (``*D\\N*``: the domain ends with D, the name starts with N),
        one without on the part it can fall in (``*x*`` in either, ``x*`` the domain, ``*x`` the
        name); presence on the name. A whole value with no domain is one the integration does
        not keep: said as a name without a domain, which no document has. Anything else
        (regular expressions, several backslashes, inner wildcards) fails the rule."""

        def on(name: str, value: Any) -> SigmaDetectionItem:
            new = SigmaDetectionItem(name, [], [value])
            new.modifiers = [m for m in item.modifiers if m.__name__ in _KEPT_MODIFIERS]
            return new

        branches: list[SigmaDetectionItem | SigmaDetection] = []
        for value in item.value:
            if isinstance(value, SigmaExists | SigmaNull):
                branches.append(on(user, value))
                continue
            spans = f"{item.field}: Elastic keeps it as {domain} and {user}; this test spans both"
            if not isinstance(value, SigmaString) or isinstance(value, SigmaCasedString):
                raise SigmaTransformationError(spans)
            parts = list(value.s)
            dropped = not value.contains_special() and value.to_plain() == "-"
            if parts in ([SpecialChars.WILDCARD_MULTI], []) or dropped:
                branches.append(on(user, value))  # any value; or one the integration drops (absent there)
                continue
            lead = bool(parts) and parts[0] is SpecialChars.WILDCARD_MULTI
            trail = len(parts) > 1 and parts[-1] is SpecialChars.WILDCARD_MULTI
            body = parts[int(lead) : len(parts) - int(trail)]
            if len(body) != 1 or not isinstance(body[0], str) or body[0].count("\\") > 1:
                raise SigmaTransformationError(spans)
            text = body[0]
            star = SpecialChars.WILDCARD_MULTI
            if "\\" in text:
                left, right = text.split("\\")
                pair = [on(domain, _parts([star] * lead + [left])), on(user, _parts([right] + [star] * trail))]
                branches.append(SigmaDetection(pair, item_linking=ConditionAND))
            elif lead and trail:
                branches.append(SigmaDetection([on(domain, value), on(user, value)], item_linking=ConditionOR))
            elif trail:
                branches.append(on(domain, value))
            elif lead:
                branches.append(on(user, value))
            else:  # a whole account without a domain: the integration keeps no such value, so no
                # document has it (a name with no domain beside it never exists there)
                branches.append(SigmaDetection([on(domain, SigmaNull()), on(user, value)], item_linking=ConditionAND))
        return SigmaDetection(branches, item_linking=ConditionOR)

    def _coalesce(self, item: SigmaDetectionItem, paths: list[str]) -> SigmaDetection:
        """A test on the first present of ``paths`` (an add-on's coalesce): the test on each path
        where every earlier one is absent, or all absent for a null test."""

        def on(path: str, values: list[Any]) -> SigmaDetectionItem:
            new = SigmaDetectionItem(path, [], values)  # the values are already modified
            new.modifiers = list(item.modifiers)
            if self.apply_detection_item(new) is not None:
                raise SigmaTransformationError(f"{path}: a coalesced path is itself an alias")
            return new

        absent = [SigmaExists(False) if isinstance(v, SigmaExists) else SigmaNull() for v in item.value[:1]]
        nulls = [v for v in item.value if isinstance(v, SigmaNull) or (isinstance(v, SigmaExists) and not v.exists)]
        if nulls and len(nulls) != len(item.value):
            raise SigmaTransformationError(f"{item.field}: a null test beside values on a coalesced field")
        if nulls:
            return SigmaDetection([on(p, list(nulls)) for p in paths], item_linking=ConditionAND)
        branches: list[SigmaDetectionItem | SigmaDetection] = []
        for i, path in enumerate(paths):
            tests = [on(p, list(absent)) for p in paths[:i]] + [on(path, list(item.value))]
            branches.append(tests[0] if len(tests) == 1 else SigmaDetection(tests, item_linking=ConditionAND))
        return SigmaDetection(branches, item_linking=ConditionOR)


def _shape(node: SigmaDetectionItem | SigmaDetection) -> Any:
    """What a detection tests, comparable: a detection of one child is that child."""
    if isinstance(node, SigmaDetection):
        if len(node.detection_items) == 1:
            return _shape(node.detection_items[0])
        return (getattr(node.item_linking, "__name__", ""), tuple(_shape(c) for c in node.detection_items))
    return (node.field, tuple(repr(v) for v in node.value))


_KEPT_MODIFIERS = ("SigmaExistsModifier",)  # the others already shaped the values


def _parts(parts: list[Any]) -> SigmaString:
    """A Sigma string of these parts (text and wildcards)."""
    out = SigmaString()
    out.s = tuple(p for p in parts if p != "")
    return out


EVENT_LOG_PRODUCTS = ("windows", "linux")  # products with Windows-style event logs (Sysmon for Linux)


_SOURCES = "_translator_elastic_sources"  # the sources as read from the rule's own field names


def rule_sources(rule: Any) -> list[tuple[Base, dict[str, str]]]:
    """(identifying fields, Sigma name -> the event's own name) for each source the rule reads; for
    products other than Windows, [] when any of its sources has no Elastic view. Read once, from
    the rule's own field names (the routing field's Elastic name no longer routes), then kept."""
    if (kept := rule.__dict__.get(_SOURCES)) is not None:
        return list(kept)
    sources = _read_sources(rule)
    rule.__dict__[_SOURCES] = sources
    return list(sources)


def _read_sources(rule: Any) -> list[tuple[Base, dict[str, str]]]:
    ls = rule.logsource
    table = logsource_table()
    codes = _event_ids(rule)
    product = ls.product or ""
    streams = streams_for(f"{product}/{ls.service}") if ls.service and not ls.category else []
    if streams:
        return [(stream_base(s), {}) for s in streams if _routed_here(rule, s)]
    if ls.service and not ls.category:
        chans = channels_by_service().get((product, ls.service), [])
        out = [(channel_base(ch, code), {}) for ch in chans for code in (codes or [None])]
    else:
        out = []
        for row in table["categories"]:
            if row["category"] != ls.category:
                continue
            renamed = table.get("event_field_maps", {}).get(f"{row['service']}/{row['category']}", {})
            inverse = {sigma: raw for raw, sigma in renamed.items()}
            for ch in channels_by_service().get((product, row["service"]), []):
                out += [
                    (channel_base(ch, int(code)), inverse)
                    for code in row["event_codes"]
                    if not codes or int(code) in codes
                ]
    if product == "windows":  # any event log: the Windows integration keeps what it does not map
        return out
    return out if out and all(has_view(base) for base, _raw in out) else []


def _routed_here(rule: Any, stream: str) -> bool:
    """Whether the rule can match events routed to ``stream``: not when its logic needs a value of
    the routing field (Entra ID's ``category``) that sends events elsewhere."""
    conditions = rule.detection.parsed_condition
    if len(conditions) != 1:
        return True
    try:
        tree = conditions[0].parse()
    except Exception:  # the backend reports a condition it cannot parse; nothing is narrowed here
        return True
    for key, values in stream_route(stream).items():
        needed = needed_values(tree, key)
        if needed is not None and not needed & {v.lower() for v in values}:
            return False
    return True


def _event_ids(rule: Any) -> list[int]:
    """The EventID values the rule's detections name (any of them), or [] when none does."""
    ids: list[int] = []

    def walk(node: Any) -> None:
        for item in getattr(node, "detection_items", []):
            if isinstance(item, SigmaDetectionItem):
                if item.field == "EventID":
                    ids.extend(int(v.number) for v in item.value if isinstance(v, SigmaNumber))
            else:
                walk(item)

    for detection in rule.detection.detections.values():
        walk(detection)
    return sorted(set(ids))


class EqlBackend(_EqlBackend):
    """pySigma's EQL backend where it writes what EQL does not parse: numbers and booleans compared by ``==``
    (``:`` and ``like~`` take strings), no ``\\/`` in regex strings (EQL has no such escape and no
    ``/`` delimiters), and keywords refused (EQL has no full-text search)."""

    re_escape: ClassVar[tuple[str, ...]] = ('"',)

    def convert_condition_field_eq_val_num(self, cond: Any, state: Any) -> Any:
        return f"{self.escape_and_quote_field(cond.field)} == {cond.value}"

    def convert_condition_field_eq_val_bool(self, cond: Any, state: Any) -> Any:
        return f"{self.escape_and_quote_field(cond.field)} == {'true' if cond.value.boolean else 'false'}"

    def convert_condition_as_in_expression(self, cond: Any, state: Any) -> Any:
        values = [arg.value for arg in cond.args]
        if values and all(isinstance(v, SigmaNumber) for v in values):
            field = self.escape_and_quote_field(cond.args[0].field)
            return f"{field} in ({', '.join(str(v) for v in values)})"
        return super().convert_condition_as_in_expression(cond, state)

    def convert_condition_val_str(self, cond: Any, state: Any) -> Any:
        raise SigmaFeatureNotSupportedByBackendError("EQL has no full-text search: keywords cannot be written")

    def convert_condition_val_num(self, cond: Any, state: Any) -> Any:
        raise SigmaFeatureNotSupportedByBackendError("EQL has no full-text search: keywords cannot be written")


class EsqlBackend(_EsqlBackend):
    """pySigma's ES|QL backend with Sigma's string semantics: a value is matched by ``like`` on
    ``to_lower(field)`` with the value lower-cased (case-insensitive, as Sigma means), or on the
    field itself for ``|cased``; the pattern escapes ``*``, ``?`` and ``\\\\`` the way LIKE reads them
    (the backend's own escaping leaves a Windows path's backslashes to be read as escapes)."""

    def convert_condition_field_eq_val_str(self, cond: Any, state: Any) -> Any:
        return self._like(cond.field, cond.value, nocase=True)

    def convert_condition_not(self, cond: Any, state: Any) -> Any:
        """``not coalesce(x, false)``: ES|QL's ``not`` of a test on a missing field is null and drops
        the row; Sigma's (and Lucene's) keeps it."""
        inner = self.convert_condition(cond.args[0], state)
        if isinstance(inner, DeferredQueryExpression):
            return super().convert_condition_not(cond, state)
        return f"not coalesce({inner}, false)"

    def convert_condition_field_eq_val_str_case_sensitive(self, cond: Any, state: Any) -> Any:
        return self._like(cond.field, cond.value, nocase=False)

    def convert_condition_as_in_expression(self, cond: Any, state: Any) -> Any:
        values = [arg.value for arg in cond.args]
        if values and all(isinstance(v, SigmaString) for v in values):
            tests = [self._like(a.field, a.value, not isinstance(a.value, SigmaCasedString)) for a in cond.args]
            return "(" + " or ".join(tests) + ")"
        return super().convert_condition_as_in_expression(cond, state)

    def _like(self, name: str, value: SigmaString, nocase: bool) -> str:
        field = self.escape_and_quote_field(name)
        lower = nocase and _has_letters(value)
        if not lower and not value.contains_special():  # an exact value: equality
            return f'{field} == "{value.to_plain().replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        pattern = render(
            value.s,
            "*",
            "?",
            lambda text: "".join("\\" + c if c in "*?\\" else c for c in (text.lower() if lower else text)),
        )
        literal = pattern.replace("\\", "\\\\").replace('"', '\\"')
        return f'{"to_lower(" + field + ")" if lower else field} like "{literal}"'
