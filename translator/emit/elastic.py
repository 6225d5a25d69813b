"""Processing pipelines of our own for the Elastic targets (lucene, eql, esql, opensearch_lucene).

pySigma's ``ecs_windows`` names the fields; what it leaves wrong shows up when the
emitted queries run on Elastic's view of events (:mod:`translator.engine.elastic`):

- **Field names** (``elastic_fields``, :mod:`translator.emit.elastic_fields`, before
  ``ecs_windows``): each field goes where the integrations put it for every source the
  rule reads, found by probing :mod:`translator.events.elastic` with a marker value.
- **Categories and data streams**: a ``process_creation`` rule becomes a query over every
  event that has ``process.command_line``. ``elastic_categories`` adds, per category, the
  event logs (``winlog.channel``) and event codes (``event.code``, a keyword: strings) the
  logsource table says it means, the same table the evaluator reads; a Windows service
  ``ecs_windows`` leaves open its event log; a JSON source its ``event.dataset``.
- **Case**: Sigma compares without case; ``keyword`` and ``wildcard`` fields compare
  with it. Lucene gets a regular expression with both cases of each letter
  (``[wW][hH]...``), or the plain term on a ``.caseless`` field (its normalizer
  lower-cases the query too); ES|QL gets ``to_lower(field) like`` (:class:`EsqlBackend`);
  EQL's ``:`` and ``like~`` already ignore it.
- **Regular expressions** (:mod:`translator.emit.lucene_regex`): Sigma's are PCRE,
  searched anywhere in the value; Lucene's (used by all three languages) match the
  whole value and have no ``(?i)``, ``(?:``, anchors or lazy quantifiers. What Lucene
  cannot say (look-arounds, word boundaries, back-references) fails the rule.
- **Field types**: a wildcard on an ``ip`` field is refused by Elasticsearch: an
  IPv4 prefix on octet boundaries (``10.``, ``192.168.``) becomes its CIDR network;
  ``*`` on a numeric or ip field (how EQL says exists) becomes a range or
  ``0.0.0.0/0``. A value the integrations drop (``""``, ``-``) is a test for the
  field's absence. A ``text`` field (PowerShell script blocks) is matched by words
  in Lucene: only a ``contains`` of one word carries over; EQL cannot search it. A
  ``boolean`` takes true or false; a ``flattened`` field's keys take terms and
  prefixes with case, in Lucene only.

Anything else that cannot be made faithful fails the rule for the target, with a
reason naming the field, rather than emitting a query that selects other events.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar

from sigma.backends.elasticsearch import EqlBackend as _EqlBackend
from sigma.backends.elasticsearch import ESQLBackend as _EsqlBackend
from sigma.conversion.deferred import DeferredQueryExpression
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError, SigmaTransformationError
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation
from sigma.processing.transformations.base import DetectionItemTransformation
from sigma.rule import SigmaDetectionItem, SigmaRule
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from translator.emit.elastic_fields import EVENT_LOG_PRODUCTS, ElasticView, rule_sources, string_of_parts
from translator.emit.lucene_regex import caseless_regex, lucene_regex
from translator.emit.pipelines import category_sources
from translator.events.elastic import (
    NUMBERS,
    STRINGS,
    TEXTS,
    dropped_values,
    field_type,
    json_logsources,
    stream_name,
    value_maps,
)
from translator.sigma.logsource import channels_by_service
from translator.sigma.rule import render

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
            plain = string_of_parts(list(value.s))  # the same parts, wildcards kept, without the |cased marker
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
