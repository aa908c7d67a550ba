"""JSON bodies of every shape, for the tests that no body gets a 5xx. They are written as text, not
through an encoder, so they nest as deep as asked and may repeat a key, carry numbers past every
range and strings with lone surrogates."""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from hypothesis import strategies as st

# Values at the edges that every JSON parser takes, and ones that only some do (numbers past a
# double, lone surrogates): the second kind is rarer, so most bodies are still read past it.
EDGE_SCALARS = [
    "null", "true", "false", "0", "-0", "-1", "0.5", "1e-400", "1.7976931348623157e308", str(2**63 - 1), str(2**63),
    str(2**64 - 1), str(2**64), str(-(2**63) - 1), str(10**300), "0." + "1" * 400, "-" + "9" * 40 + "e-9",
    '""', '"\\ud83d\\ude00"', '"\\u0000"', '"\\u202e"', '"2026-11-25T10:00:00Z"', '"0.30"', '" "', '"x"',
]
RARELY_TAKEN = ["1e400", "-1e400", "9" * 400, '"\\ud800"', '"a\\udfff"']


def nested(depth: int, inner: str = "1", *, objects: bool = False) -> str:
    """`inner` inside `depth` arrays, or objects of one key."""
    return ('{"a":' * depth + inner + "}" * depth) if objects else ("[" * depth + inner + "]" * depth)


def array(items: Iterable[str]) -> str:
    return "[" + ",".join(items) + "]"


def object_(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{key}:{value}" for key, value in pairs) + "}"


SCALARS = st.one_of(
    st.sampled_from(EDGE_SCALARS),
    st.integers().map(str),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=30).map(json.dumps),
)
# Depths on each side of every line that matters: a little, the API's limit (64), the encoder's (254)
# and the parser's (1024), far past them.
DEPTHS = st.sampled_from([(0, 4), (60, 68), (250, 1030), (1031, 20_000)]).flatmap(lambda band: st.integers(*band))


def bodies(keys: Iterable[str], plausible: Iterable[str], shapes: Iterable[tuple[str, ...]] = ()) -> st.SearchStrategy[str]:
    """JSON texts for a route whose bodies use these `keys`, with these `plausible` values (JSON
    texts: real ids, enum members) mixed in, so that some of them get past validation: an object
    with the keys of one of the `shapes` (the required keys of an object of the schema) and others,
    a batch of such objects, or any JSON at all inside arrays or objects of any depth."""
    known = st.sampled_from(list(dict.fromkeys(plausible)) or ["null"])  # in the order given: the same draws every run
    some_keys = st.sampled_from(sorted(keys) or ["a"]).map(json.dumps)
    key_texts = st.one_of(some_keys, st.text(max_size=12).map(json.dumps))
    anything = st.recursive(st.one_of(SCALARS, known), lambda children: st.one_of(
        st.lists(children, max_size=5).map(array),
        st.lists(st.tuples(key_texts, children), max_size=6).map(object_),
    ), max_leaves=20)
    deep = st.builds(lambda inner, depth, objects: nested(depth, inner, objects=objects), anything, DEPTHS, st.booleans())
    values = st.one_of(known, anything)

    @st.composite
    def shaped(draw: st.DrawFn) -> str:
        required = draw(st.sampled_from(sorted(set(shapes)) or [()]))
        mostly_known = st.sampled_from([known, known, known, values]).flatmap(lambda kind: kind)
        pairs = [(json.dumps(key), draw(mostly_known)) for key in required]
        pairs += draw(st.lists(st.tuples(key_texts, values), max_size=3))
        pairs += draw(st.lists(st.tuples(key_texts, deep), max_size=1))
        return object_(draw(st.permutations(pairs)))

    def with_one_rarely_taken(body: str, key: str, value: str) -> str:
        return object_([(key, value)]) if body == "{}" else f"{body[:-1]},{key}:{value}}}"

    rarely_taken = st.builds(with_one_rarely_taken, shaped(), key_texts, st.sampled_from(RARELY_TAKEN))
    kinds = [shaped(), st.lists(shaped(), min_size=1, max_size=5).map(array), deep, anything, rarely_taken]
    return st.sampled_from([0, 0, 0, 0, 1, 1, 2, 3, 4]).flatmap(kinds.__getitem__)  # mostly objects of the route's shape


def schema_words(schema: dict[str, Any], components: dict[str, Any]) -> tuple[set[str], set[str], set[tuple[str, ...]]]:
    """The property names, the enum members (as JSON texts) and the required keys of each object
    of a request schema, at any depth."""
    keys: set[str] = set()
    members: set[str] = set()
    shapes: set[tuple[str, ...]] = set()
    for node in _nodes(schema, components, set()):
        keys.update(node.get("properties", {}))
        members.update(json.dumps(member) for member in node.get("enum", ()))
        if "const" in node:
            members.add(json.dumps(node["const"]))
        if node.get("required"):
            shapes.add(tuple(node["required"]))
    return keys, members, shapes


def _nodes(schema: Any, components: dict[str, Any], seen: set[str]) -> Iterator[dict[str, Any]]:
    if isinstance(schema, list):
        for item in schema:
            yield from _nodes(item, components, seen)
        return
    if not isinstance(schema, dict):
        return
    if (reference := schema.get("$ref")) is not None:
        name = reference.rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            yield from _nodes(components[name], components, seen)
        return
    yield schema
    for value in schema.values():
        yield from _nodes(value, components, seen)
