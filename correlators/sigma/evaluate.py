"""Native Sigma matching: a parsed pySigma rule compiled once into closures that test one event's fields.

Cordon never converts rules into a query language; it walks pySigma's post-processed condition tree
(AND / OR / NOT over field-equals-value and keyword leaves) and builds a predicate per leaf. Everything costly
(lower-casing, wildcard and regular-expression compilation, CIDR parsing) happens here, at load time, because
every rule runs on every event.

Semantics, per the Sigma specification:
- strings compare case-insensitively unless `cased`; `*` and `?` are wildcards, escaped ones are literal;
  wildcard values that are not a plain exact / contains / startswith / endswith run on RE2 (linear time);
- a field matches when any of its values matches (CloudTrail lists, flattened paths);
- an object-valued field is matched as its compact JSON text (`{"status":"Suspended"}`), as a SIEM that stores
  CloudTrail as text matches `requestParameters|contains: Suspended`; exact values rarely equal that text;
- numbers and strings meet on their text: `'200'` matches 200 and `200` matches `'200'`; JSON booleans read as
  `true` / `false`;
- `null` and `|exists: false` both match an absent or null field; `|exists: true` is their complement;
- regular expressions are case-sensitive unless `|i`, and run on the engine pySigma validated them with (RE2 by
  default: linear time, so an attacker-chosen user agent cannot stall the correlator).

Whatever this module cannot evaluate is a `RuleError` at load time, never a rule that silently matches nothing.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import re2
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.modifiers import (
    SigmaExpandModifier,
    SigmaModifier,
    SigmaTimestampModifier,
    reverse_modifier_mapping,
)
from sigma.policy import default_policy
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
)

from correlators.errors import RuleError
from correlators.sigma.fields import CORDON_FIELDS, FieldView, is_known_field, value_text
from correlators.sigma.literals import required_literal
from correlators.sigma.pins import EXISTS, Contains, Needle

Matcher = Callable[[FieldView], bool]
ValueTest = Callable[[Any], bool]
# (field, modifier) -> "path:line" of the detection key that wrote them
Locate = Callable[[str | None, str | None], str]

# Why a modifier pySigma accepts is refused, for the error message.
_UNSUPPORTED_MODIFIERS: dict[type[SigmaModifier[Any, Any]], str] = {
    SigmaExpandModifier: "its %placeholders% are filled by a conversion pipeline, which Cordon does not run",
    SigmaTimestampModifier: "date-part matching is not implemented",
}

_WILDCARDS = {SpecialChars.WILDCARD_MULTI: ".*", SpecialChars.WILDCARD_SINGLE: "."}

_COMPARE = {
    CompareOperators.LT: operator.lt,
    CompareOperators.LTE: operator.le,
    CompareOperators.GT: operator.gt,
    CompareOperators.GTE: operator.ge,
    CompareOperators.NEQ: operator.ne,
}


class _Unsupported(Exception):
    def __init__(self, what: str, field: str | None = None, modifier: str | None = None) -> None:
        super().__init__(what)
        self.what, self.field, self.modifier = what, field, modifier


def compile_rule(rule: SigmaRule, locate: Locate | None = None) -> Matcher:
    """One predicate for the whole rule. Raises RuleError naming the rule, the file and what is unsupported.

    pySigma parses conditions on first use, so a broken condition raises its SigmaConditionError from here.
    """
    path = str(rule.source.path) if rule.source else "<rule>"
    locate = locate or (lambda field, modifier: path)
    validate_detections(rule.title, rule.detection.detections.values(), locate)
    try:
        trees = [condition.parsed for condition in rule.detection.parsed_condition]
        # Several conditions in one rule are alternatives (Sigma specification).
        return _any_of([_compile_node(tree) for tree in trees])
    except _Unsupported as error:
        raise RuleError(f"rule '{rule.title}': {error.what}", where=locate(error.field, error.modifier)) from None


Pins = dict[str, frozenset[Needle]]
# Alternatives an AND keeps apart; past this, a child contributes only what all of its alternatives pin.
_MAX_ALTERNATIVES = 16


def pinned_alternatives(rule: SigmaRule) -> tuple[Pins, ...]:
    """What an event needs for the rule to match, as alternatives: the rule can match only an event that meets
    one of them, and an event meets an alternative when each field it names meets one of the alternative's
    needles for that field (`pins`). A necessary condition, not a sufficient one: the rule index
    (`correlators/sigma/index.py`) uses it to skip rules that cannot match, and the matcher still decides. An
    empty alternative pins nothing: the rule can match any event.

    Plain, case-insensitive strings pin a field to their lower-cased text; `|exists: true` pins it to `EXISTS`; a
    case-sensitive `|re` with a literal every match contains pins it to `Contains(literal)`. OR unites its
    children's alternatives (those pinning only the same one field merge); AND joins one alternative of each
    child, and a field named twice keeps the smaller set, not the intersection: a field with several values can
    satisfy both. NOT, keywords, other wildcards and modifiers, numbers and the rest pin nothing.
    """
    conditions = [_alternatives(condition.parsed) for condition in rule.detection.parsed_condition]
    return tuple(_alternatives_of_any(conditions))


def _alternatives(node: Any) -> list[Pins]:
    if isinstance(node, ConditionOR):
        return _alternatives_of_any([_alternatives(arg) for arg in node.args])
    if isinstance(node, ConditionAND):
        joined: list[Pins] = [{}]
        for arg in node.args:
            child = _alternatives(arg)
            if len(joined) * len(child) > _MAX_ALTERNATIVES:
                child = [_pinned_by_all(child)]
            joined = [_both(mine, theirs) for mine in joined for theirs in child]
        return joined
    needle = _needle(node)
    return [{} if needle is None else {node.field: frozenset({needle})}]


def _needle(node: Any) -> Needle | None:
    """What a leaf needs of its field, when the index can test it (see `pins`); None when it cannot."""
    text = _exact_text(node)
    if text is not None or not isinstance(node, ConditionFieldEqualsValueExpression) or node.field is None:
        return text
    value = node.value
    if isinstance(value, SigmaExists):
        return EXISTS if value.exists else None
    if isinstance(value, SigmaRegularExpression):
        literal = _regex_literal(value)
        return None if literal is None else Contains(literal)
    return None


def _alternatives_of_any(children: list[list[Pins]]) -> list[Pins]:
    single_field: dict[str, frozenset[Needle]] = {}
    others: list[Pins] = []
    for alternative in (alternative for child in children for alternative in child):
        if not alternative:
            return [{}]  # one alternative open to any event opens the whole
        if len(alternative) == 1:
            ((field, texts),) = alternative.items()
            single_field[field] = single_field.get(field, frozenset()) | texts
        else:
            others.append(alternative)
    found = [{field: texts} for field, texts in single_field.items()] + others
    return found or [{}]


def _both(mine: Pins, theirs: Pins) -> Pins:
    joined = dict(mine)
    for field, texts in theirs.items():
        if field not in joined or len(texts) < len(joined[field]):
            joined[field] = texts
    return joined


def _pinned_by_all(alternatives: list[Pins]) -> Pins:
    """The fields every alternative pins, their texts united: what any of them needs."""
    common = set(alternatives[0]).intersection(*alternatives[1:])
    return {field: frozenset().union(*(pins[field] for pins in alternatives)) for field in sorted(common)}


def validate_detections(title: str, detections: Iterable[SigmaDetection], locate: Locate) -> None:
    """Refuse unsupported modifiers, values and `cordon.*` fields, naming the rule and where they are written."""
    try:
        for detection in detections:
            _check_detection(detection)
    except _Unsupported as error:
        raise RuleError(f"rule '{title}': {error.what}", where=locate(error.field, error.modifier)) from None


def _check_detection(detection: SigmaDetection | SigmaDetectionItem) -> None:
    # Checked on the detection items, not the condition tree: only the items still know their modifiers.
    if isinstance(detection, SigmaDetection):
        for item in detection.detection_items:
            _check_detection(item)
        return
    field = detection.field
    for modifier in detection.modifiers:
        for refused, why in _UNSUPPORTED_MODIFIERS.items():
            if issubclass(modifier, refused):
                name = reverse_modifier_mapping.get(modifier.__name__, modifier.__name__)
                raise _Unsupported(f"modifier '{name}' on field '{field}' is not supported: {why}", field, name)
    if field is not None and not is_known_field(field):
        raise _Unsupported(_unknown_field(field), field)
    for value in detection.value:
        try:
            _value_test(value)
        except _Unsupported as error:
            raise _Unsupported(f"{error.what} (field '{field}')", field) from None
        if isinstance(value, SigmaFieldReference) and not is_known_field(value.field):
            raise _Unsupported(_unknown_field(value.field), field, "fieldref")


def _unknown_field(field: str) -> str:
    return f"unknown field '{field}', valid cordon.* fields: {', '.join(sorted(CORDON_FIELDS))}"


def _compile_node(node: Any) -> Matcher:
    if isinstance(node, ConditionAND):
        return _all_of([_compile_node(arg) for arg in _cheapest_first(node.args)])
    if isinstance(node, ConditionOR):
        return _any_of(_compile_alternatives(node.args))
    if isinstance(node, ConditionNOT):
        inner = _compile_node(node.args[0])
        return lambda view: not inner(view)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _field_matcher(node.field, node.value)
    if isinstance(node, ConditionValueExpression):
        return _keyword_matcher(node.value)
    raise _Unsupported(f"condition element {type(node).__name__} is not supported")


def _compile_alternatives(args: list[Any]) -> list[Matcher]:
    """An OR's children, cheapest first, with the plain values one field is compared with (`eventName: [A, B]`)
    merged into one set lookup: some text of the field is one of them."""
    exact: dict[str, set[str]] = {}
    others: list[Any] = []
    for arg in _cheapest_first(args):
        needle = _exact_text(arg)
        if needle is None:
            others.append(arg)
        else:
            exact.setdefault(arg.field, set()).add(needle)
    merged = [_one_of(field, frozenset(needles)) for field, needles in exact.items()]
    return merged + [_compile_node(arg) for arg in others]


def _one_of(field: str, needles: frozenset[str]) -> Matcher:
    if len(needles) == 1:
        (needle,) = needles
        return lambda view: needle in view.texts(field)
    return lambda view: not needles.isdisjoint(view.texts(field))


def _cheapest_first(args: list[Any]) -> list[Any]:
    """Children of AND and OR in the order that decides soonest on average: every predicate is pure, so the
    order changes the cost of an answer, never the answer."""
    return sorted(args, key=_cost)


def _cost(node: Any) -> int:
    """A rough price of evaluating `node`: set lookups on cached field texts are cheap, scans of the whole event
    (keywords), regular expressions and field comparisons are not."""
    if isinstance(node, (ConditionAND, ConditionOR)):
        return sum(_cost(arg) for arg in node.args)
    if isinstance(node, ConditionNOT):
        return _cost(node.args[0])
    if isinstance(node, ConditionFieldEqualsValueExpression):
        if _exact_text(node) is not None or isinstance(node.value, (SigmaNull, SigmaExists)):
            return 1
        if isinstance(node.value, (SigmaRegularExpression, SigmaFieldReference, SigmaCIDRExpression)):
            return 8
        return 3
    return 20  # a keyword: every scalar of the event


def _exact_text(node: Any) -> str | None:
    """The lower-cased text a field is compared with when `node` is a plain case-insensitive equality, else None."""
    if not isinstance(node, ConditionFieldEqualsValueExpression) or node.field is None:
        return None
    value = node.value
    if not isinstance(value, SigmaString) or isinstance(value, SigmaCasedString):
        return None
    # One literal part at most: exactly the values `_string_test` compares with `==` on lower-cased text.
    parts = list(value.iter_parts())
    if len(parts) > 1 or not all(isinstance(part, str) for part in parts):
        return None
    return "".join(str(part) for part in parts).lower()


def _all_of(matchers: list[Matcher]) -> Matcher:
    if len(matchers) == 1:
        return matchers[0]
    if len(matchers) == 2:
        first, second = matchers
        return lambda view: first(view) and second(view)

    def match(view: FieldView) -> bool:
        for matcher in matchers:  # noqa: SIM110 - a loop, not all() over a generator: this runs per rule per event
            if not matcher(view):
                return False
        return True

    return match


def _any_of(matchers: list[Matcher]) -> Matcher:
    if len(matchers) == 1:
        return matchers[0]
    if len(matchers) == 2:
        first, second = matchers
        return lambda view: first(view) or second(view)

    def match(view: FieldView) -> bool:
        for matcher in matchers:  # noqa: SIM110 - a loop, not any() over a generator: this runs per rule per event
            if matcher(view):
                return True
        return False

    return match


def _field_matcher(field: str, value: Any) -> Matcher:
    if isinstance(value, SigmaNull):
        return lambda view: _is_null(view.get(field))
    if isinstance(value, SigmaExists):
        wanted = value.exists
        return lambda view: (not _is_null(view.get(field))) == wanted
    if isinstance(value, SigmaFieldReference):
        return _fieldref_matcher(field, value)
    folded = _folded_matcher(field, value)
    if folded is not None:
        return folded
    test = _value_test(value)

    return lambda view: any(map(test, view.get(field)))


def _folded_matcher(field: str, value: Any) -> Matcher | None:
    """The common case-insensitive shapes (exact, contains, startswith, endswith, `*`) tested on the field's
    cached lower-cased texts, which is what `_string_test` compares; None for anything else."""
    if not isinstance(value, SigmaString) or isinstance(value, SigmaCasedString):
        return None
    parts = list(value.iter_parts())
    if any(isinstance(part, Placeholder) for part in parts):
        return None  # refused by `_value_test`, with its message
    shape = _shape(parts)
    if shape is None:
        return None
    kind, needle = shape
    needle = needle.lower()
    if kind == "exact":
        return lambda view: needle in view.texts(field)
    if kind == "any":
        return lambda view: bool(view.texts(field))
    test = _literal_test(kind, needle)

    return lambda view: any(map(test, view.texts(field)))


def _literal_test(kind: str, needle: str) -> Callable[[str], bool]:
    if kind == "exact":
        return lambda text: text == needle
    if kind == "contains":
        return lambda text: needle in text
    if kind == "startswith":
        return lambda text: text.startswith(needle)
    return lambda text: text.endswith(needle)


def _shape(parts: list[Any]) -> tuple[str, str] | None:
    """("exact" | "contains" | "startswith" | "endswith" | "any", literal) for a string of at most one literal
    part and `*` wildcards in those places; None for anything that needs a regular expression."""
    if SpecialChars.WILDCARD_SINGLE in parts:
        return None
    plain = [part for part in parts if isinstance(part, str)]
    if len(plain) > 1:
        return None
    needle = plain[0] if plain else ""
    stars = tuple(part is SpecialChars.WILDCARD_MULTI for part in parts)
    kinds = {
        (): "exact",
        (False,): "exact",
        (True, False, True): "contains",
        (False, True): "startswith",
        (True, False): "endswith",
        (True,): "any",
        (True, True): "any",
    }
    kind = kinds.get(stars)
    return None if kind is None else (kind, needle)


def _keyword_matcher(value: Any) -> Matcher:
    if isinstance(value, (SigmaNull, SigmaExists, SigmaFieldReference)):
        raise _Unsupported(f"{type(value).__name__} needs a field, it cannot be a keyword")
    test = _value_test(value)
    return lambda view: any(map(test, view.all_values()))


def _is_null(values: list[Any]) -> bool:
    return not values or any(value is None for value in values)


def _fieldref_matcher(field: str, reference: SigmaFieldReference) -> Matcher:
    """`field|fieldref: other`: some value of `field` equals (or starts/ends with) some value of `other`."""
    if reference.starts_with and reference.ends_with:
        relation: Callable[[str, str], bool] = operator.contains  # contains(mine, theirs): theirs in mine
    elif reference.starts_with:
        relation = str.startswith
    elif reference.ends_with:
        relation = str.endswith
    else:
        relation = operator.eq
    other = reference.field

    def match(view: FieldView) -> bool:
        theirs = view.texts(other)
        return bool(theirs) and any(relation(mine, their) for mine in view.texts(field) for their in theirs)

    return match


def _value_test(value: Any) -> ValueTest:
    """A test of one scalar against one Sigma value. Subclasses come before their bases."""
    if isinstance(value, SigmaCasedString):
        return _string_test(value, cased=True)
    if isinstance(value, SigmaString):
        return _string_test(value, cased=False)
    if isinstance(value, SigmaTimestampPart):
        raise _Unsupported("date-part values (minute, hour, day, week, month, year) are not supported")
    if isinstance(value, SigmaNumber):
        return _number_test(value.number)
    if isinstance(value, SigmaBool):
        return _bool_test(value.boolean)
    if isinstance(value, SigmaRegularExpression):
        return _regex_test(value)
    if isinstance(value, SigmaCIDRExpression):
        return _cidr_test(value)
    if isinstance(value, SigmaCompareExpression):
        return _compare_test(value)
    if isinstance(value, SigmaExpansion):
        tests = [_value_test(item) for item in value.values]
        return lambda scalar: any(test(scalar) for test in tests)
    if isinstance(value, (SigmaNull, SigmaExists, SigmaFieldReference)):
        return lambda scalar: False  # handled at the field level; never reached for a single scalar
    raise _Unsupported(f"value type {type(value).__name__} is not supported")


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):  # True == 1 in Python, not in Sigma
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _string_test(value: SigmaString, *, cased: bool) -> ValueTest:
    parts: list[str | SpecialChars] = []
    for part in value.iter_parts():
        if isinstance(part, Placeholder):
            raise _Unsupported("placeholders (%name%) are not supported: no pipeline fills them")
        parts.append(part)
    fold: Callable[[str], str] = (lambda text: text) if cased else str.lower
    literals = [fold(part) if isinstance(part, str) else part for part in parts]
    # The common shapes (exact, contains, startswith, endswith) avoid regular expressions altogether.
    shape = _shape(literals)
    if shape is not None:
        kind, needle = shape
        if kind == "any":
            return lambda scalar: value_text(scalar) is not None
        return _text_test(fold, _literal_test(kind, needle))
    # Anything else (`*a*a*b`, `?`) runs on RE2, never on Python's backtracking `re`: a rule's wildcards against an
    # attacker-chosen user agent stay linear in its length.
    pattern = "".join(re2.escape(part) if isinstance(part, str) else _WILDCARDS[part] for part in literals)
    compiled = re2.compile(("(?s)" if cased else "(?is)") + pattern)
    return _text_test(lambda text: text, lambda text: compiled.fullmatch(text) is not None)


def _text_test(fold: Callable[[str], str], test: Callable[[str], bool]) -> ValueTest:
    def match(scalar: Any) -> bool:
        text = value_text(scalar)
        return text is not None and test(fold(text))

    return match


def _number_test(number: int | float) -> ValueTest:
    return lambda scalar: _number(scalar) == number


def _bool_test(boolean: bool) -> ValueTest:
    spelled = "true" if boolean else "false"
    return lambda scalar: scalar is boolean or (isinstance(scalar, str) and scalar.lower() == spelled)


def _regex_test(value: SigmaRegularExpression) -> ValueTest:
    engine = (value.policy or default_policy).regex_engine
    compiled = engine.compile(str(value.regexp), _regex_flags(value))
    literal = _regex_literal(value)
    if literal is not None:  # most texts lack it: spared the call into the regular-expression engine
        return _text_test(lambda text: text, lambda text: literal in text and compiled.search(text) is not None)
    return _text_test(lambda text: text, lambda text: compiled.search(text) is not None)


def _regex_flags(value: SigmaRegularExpression) -> int:
    flags = 0
    for flag in value.flags:
        flags |= SigmaRegularExpression.sigma_to_python_flags[flag]
    return flags


def _regex_literal(value: SigmaRegularExpression) -> str | None:
    """Text every match of the expression contains, compared exactly; None when it ignores case or has none."""
    return None if _regex_flags(value) & re.IGNORECASE else required_literal(str(value.regexp))


def _cidr_test(value: SigmaCIDRExpression) -> ValueTest:
    network = value.network

    def match(scalar: Any) -> bool:
        address = _ip(scalar) if isinstance(scalar, str) else None
        return address is not None and address.version == network.version and address in network

    return match


@lru_cache(maxsize=4096)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:  # "AWS Internal", a service name: not an address
        return None


def _compare_test(value: SigmaCompareExpression) -> ValueTest:
    compare = _COMPARE[value.op]
    limit = value.number.number

    def match(scalar: Any) -> bool:
        number = _number(scalar)
        return number is not None and compare(number, limit)

    return match
