"""A configuration file's bytes into plain data, whatever the bytes.

`read_config_text` reads a bounded number of bytes and decodes them as UTF-8;
`read_yaml` turns the text into dicts, lists and scalars, with the line of every key and
item for messages. Both report what is wrong as a `ConfigError` naming the file and line,
never another exception, and both are bounded: a file larger than `Limits.max_bytes`,
aliases that expand to more than `Limits.max_values` values (a "billion laughs"),
nesting deeper than `Limits.max_depth` and reading that takes longer than
`Limits.seconds` are refused with a message saying so. A duplicate key, a number too long
to be any setting's, an alias to nothing and an unsupported tag are problems reported
alongside the config's own (`Document.problems`), not surprises later.

This module never runs code from the file (no Python tags), never touches the network
and knows nothing of what the settings mean: config.py validates the data it returns.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import ScalarNode

from kernel.errors import ConfigError, ConfigProblem
from kernel.formatting import excerpt

Path_ = tuple[Any, ...]  # keys and list indexes from the top of the document


@dataclass(frozen=True, slots=True)
class Limits:
    """How much a config file may ask of the loader. The defaults carry a file of about
    80,000 links with two probes and a contract each, far beyond what one monitor runs
    (10,000 links take about 3 s of CPU to read and validate, 50,000 about 15 s)."""

    max_bytes: int = 32 * 2**20
    # Every mapping, list and scalar counts, and an alias counts as everything it stands
    # for: that is what validation walks. A config of 10,000 links is about 600,000.
    max_values: int = 5_000_000
    # A Linkwatch config nests at most 7 levels; recursion further on needs a bound.
    max_depth: int = 64
    seconds: float = 60.0

    def deadline(self) -> Deadline:
        return Deadline(self.seconds)


LIMITS = Limits()
# No setting takes a number longer than this; Python converts longer ones slowly.
MAX_NUMBER_CHARS = 100


class Deadline:
    """The moment reading a file gives up, checked between steps and every few thousand
    values: a file that is slow to read is refused with a message, never waited out."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def expired(self) -> bool:
        return time.monotonic() > self._end

    def check(self, source: str, line: int | None = None) -> None:
        if self.expired():
            raise ConfigError(
                [
                    ConfigProblem(
                        "",
                        f"reading the file took longer than {self.seconds:g} s and was given "
                        "up; a config of 10,000 links takes a few seconds, so look for very "
                        "long lists or values",
                        line,
                    )
                ],
                source,
            )


def read_config_text(path: str | Path, limits: Limits = LIMITS) -> str:
    """The file's text: at most `limits.max_bytes` bytes, UTF-8 (a byte order mark
    allowed)."""
    source = str(path)
    try:
        with open(path, "rb") as file:
            raw = file.read(limits.max_bytes + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([ConfigProblem("", f"cannot read the file: {reason}")], source) from None
    if len(raw) > limits.max_bytes:
        raise ConfigError(
            [
                ConfigProblem(
                    "",
                    f"the file is larger than {limits.max_bytes // 2**20} MiB, more than any "
                    "config needs (80,000 links take about 32 MiB); is it the right file?",
                )
            ],
            source,
        )
    return decode(raw, source)


_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def decode(raw: bytes, source: str) -> str:
    """UTF-8 text, or a ConfigError saying where the first byte is that is not."""
    for bom, encoding in _WIDE_BOMS:
        if raw.startswith(bom):
            problem = (
                f"the file is {encoding} text (it starts with a {encoding} byte order mark); "
                "save it as UTF-8"
            )
            raise ConfigError([ConfigProblem("", problem, 1)], source)
    nul = raw.find(b"\0")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        problem = (
            "the file contains NUL bytes, so it is not text (or it is UTF-16 or UTF-32 "
            "without a byte order mark); save it as UTF-8"
        )
        raise ConfigError([ConfigProblem("", problem, line)], source)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - line_start + 1
        problem = (
            f"byte 0x{raw[exc.start]:02x} in column {column} is not UTF-8 (is the file "
            "Latin-1 or Windows-1252?); save it as UTF-8"
        )
        raise ConfigError([ConfigProblem("", problem, line)], source) from None


class YamlMap(dict[Any, Any]):
    """A YAML mapping as a dict, with the line of each of its keys."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}


class YamlList(list[Any]):
    """A YAML sequence as a list, with the line of each of its items."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []


@dataclass(frozen=True)
class Document:
    """What a YAML file holds: None for an empty file (or only comments), else the top
    value, with the problems found while reading it (reported with the config's own)."""

    data: Any
    problems: Sequence[tuple[Path_, str]] = ()
    unread: frozenset[Path_] = frozenset()  # values not read as written (see problems)

    def judged(self, path: Path_) -> bool:
        """Whether validation may judge the value at `path`: not if it, or a value it is
        part of, could not be read as written (that is reported already)."""
        return not any(path[:end] in self.unread for end in range(len(path) + 1))

    def line(self, path: Path_) -> int | None:
        """The line of the value at `path`, or of the nearest enclosing one that exists
        (a missing key has no line of its own). A value an alias stands for is at its
        anchor's line, where it is written."""
        node, found = self.data, 1 if self.data is not None else None
        for part in path:
            if not isinstance(node, YamlMap | YamlList) or (isinstance(part, int) and part < 0):
                break
            try:
                found, node = node.lines[part], node[part]
            except (KeyError, IndexError, TypeError):  # not there, or not a key at all
                break
        return found


def read_yaml(
    text: str, source: str, limits: Limits = LIMITS, deadline: Deadline | None = None
) -> Document:
    """Parse one YAML document (the safe subset: no Python tags). Raise ConfigError for
    what stops reading (bad syntax, a second document, a limit); return the other
    problems with the data."""
    deadline = deadline or limits.deadline()
    if len(text) > limits.max_bytes:
        too_large = f"the text is longer than {limits.max_bytes // 2**20} MiB"
        raise ConfigError([ConfigProblem("", too_large)], source)
    try:
        builder = _Builder(text, source, limits, deadline)
    except UnicodeEncodeError as exc:  # a lone surrogate: text no file can hold
        problem = f"character {exc.start + 1} is not Unicode text; save the file as UTF-8"
        raise ConfigError([ConfigProblem("", problem)], source) from None
    return builder.run()


_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"
_PLAIN_TAGS = {_TAG + "map", _TAG + "seq", None, "!"}
_NOT_A_KEY = object()  # a key that was refused: its value is skipped
_MERGE_KEY = object()  # `<<`: its value's mappings are merged into the mapping it is in


@dataclass
class _Open:
    """A mapping or list being read."""

    value: YamlMap | YamlList
    line: int
    anchor: str | None
    key: Any = _NOT_A_KEY  # mappings: the key waiting for its value
    key_line: int = 0
    awaiting_key: bool = True
    explicit: dict[Any, int] = field(default_factory=dict)  # keys written here: line
    merges: list[YamlMap] = field(default_factory=list)
    size: int = 1  # values, aliases counted in full
    height: int = 1  # nesting levels, this one included


class _Builder:
    """Events from libyaml to plain data, counting every value an alias stands for."""

    def __init__(self, text: str, source: str, limits: Limits, deadline: Deadline) -> None:
        self.text = text
        self.source = source
        self.limits = limits
        self.deadline = deadline
        self.loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
        self.anchors: dict[str, tuple[Any, int, int]] = {}  # value, size, height
        self.open: list[_Open] = []
        self.problems: list[tuple[Path_, str]] = []
        self.unread: set[Path_] = set()
        self.values = 0
        self.aliased = 0  # of them, those aliases stand for
        self.tags: dict[str, str] = {}  # plain scalars' resolved tags: most recur

    def run(self) -> Document:
        try:
            return self._read()
        except yaml.YAMLError as exc:
            raise self._syntax_error(exc) from None
        finally:
            self.loader.dispose()

    def _read(self) -> Document:
        loader = self.loader
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            return Document(None)
        loader.get_event()  # document start
        result: list[Any] = []
        event = loader.get_event()
        while type(event) is not yaml.DocumentEndEvent:
            self._event(event, result)
            event = loader.get_event()
        if not loader.check_event(yaml.StreamEndEvent):
            line = _line(loader.peek_event())
            self._stop(
                "the file holds more than one YAML document (another starts after ---); "
                "a config is one document",
                line,
            )
        return Document(result[0], self.problems, frozenset(self.unread))

    def _event(self, event: yaml.Event, result: list[Any]) -> None:
        line = _line(event)
        kind = type(event)
        if kind is yaml.ScalarEvent:
            assert isinstance(event, yaml.ScalarEvent)
            self._count(1, line)
            self._done(self._scalar(event, line), 1, 1, line, event.anchor, result)
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            done = self.open.pop()
            value = _merged(done) if done.merges else done.value
            self._done(value, done.size, done.height, done.line, done.anchor, result)
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            assert isinstance(event, yaml.CollectionStartEvent)
            self._count(1, line)
            if len(self.open) >= self.limits.max_depth:
                self._too_deep(line)
            if event.tag not in _PLAIN_TAGS:
                self._unsupported(str(event.tag))
            value = YamlMap() if kind is yaml.MappingStartEvent else YamlList()
            self.open.append(_Open(value, line, event.anchor))
        elif kind is yaml.AliasEvent:
            self._alias(event.anchor or "", line, result)  # type: ignore[attr-defined]

    def _count(self, values: int, line: int, *, aliased: bool = False) -> None:
        before = self.values
        self.values += values
        if self.values > self.limits.max_values:
            self._stop(
                f"the document holds more than {self.limits.max_values:,} values"
                + (
                    " once its aliases are expanded (an alias counts as everything its "
                    "anchor holds, so aliases of aliases multiply); write the repeated "
                    "parts out, or use fewer levels of aliases"
                    if aliased or self.aliased
                    else "; a config of 10,000 links holds about 600,000"
                ),
                line,
            )
        if before >> 12 != self.values >> 12:
            self.deadline.check(self.source, line)

    def _too_deep(self, line: int) -> None:
        self._stop(
            f"values are nested more than {self.limits.max_depth} levels deep; a "
            "Linkwatch config needs fewer than 10",
            line,
        )

    def _alias(self, anchor: str, line: int, result: list[Any]) -> None:
        if anchor in self.anchors:
            value, size, height = self.anchors[anchor]
            self._count(size, line, aliased=True)
            self.aliased += size
            if len(self.open) + height > self.limits.max_depth:
                self._too_deep(line)
            self._done(value, size, height, line, None, result)
            return
        if any(o.anchor == anchor for o in self.open):
            message = f"alias *{anchor} is inside its own anchor &{anchor}: a loop"
        else:
            message = f"alias *{anchor} has no anchor &{anchor} before it"
        self._problem(message, unread=True)
        self._count(1, line)
        self._done(None, 1, 1, line, None, result)

    def _done(
        self, value: Any, size: int, height: int, line: int, anchor: str | None, result: list[Any]
    ) -> None:
        """A value is complete: remember its anchor, and put it where it belongs."""
        if anchor is not None:
            self.anchors[anchor] = (value, size, height)
        if not self.open:
            result.append(value)
            return
        parent = self.open[-1]
        parent.size += size
        if height >= parent.height:
            parent.height = height + 1
        if isinstance(parent.value, YamlList):
            parent.value.append(value)
            parent.value.lines.append(line)
        elif parent.awaiting_key:
            key = self._key(value)
            parent.awaiting_key = False
            parent.key, parent.key_line = key, line
        else:
            parent.awaiting_key = True
            self._put(parent, value)

    def _key(self, key: Any) -> Any:
        if key is _MERGE_KEY:
            return key
        if not _hashable(key):
            self._problem(f"a key must be a single value, not a {_kind_of(key)}; write key: value")
            return _NOT_A_KEY
        return key

    def _put(self, parent: _Open, value: Any) -> None:
        key, line = parent.key, parent.key_line
        mapping = parent.value
        assert isinstance(mapping, YamlMap)
        if key is _NOT_A_KEY:
            return
        if key is _MERGE_KEY:
            sources = value if isinstance(value, YamlList) else [value]
            if all(isinstance(s, YamlMap) for s in sources):
                parent.merges.extend(sources)
            else:
                self._problem(
                    "<< merges a mapping (&anchor) or a list of them into this one; "
                    f"got a {_kind_of(value)}",
                    "<<",
                )
            return
        if key in parent.explicit:
            self._problem(
                f"key {excerpt(key)} is given twice, on lines {parent.explicit[key]} and "
                f"{line}; give it once (the file does not say which one is meant)",
                key,
            )
        parent.explicit[key] = line
        mapping[key] = value
        mapping.lines[key] = line

    def _problem(self, message: str, *key: Any, unread: bool = False) -> None:
        """A problem with the value being read, at its path; `unread`: the value is not
        what the file says (kept as text, or None), so validation must not judge it."""
        path: list[Any] = []
        for frame in self.open:
            if isinstance(frame.value, YamlList):
                path.append(len(frame.value))
            elif not frame.awaiting_key and frame.key is not _NOT_A_KEY:
                path.append("<<" if frame.key is _MERGE_KEY else frame.key)
        self.problems.append(((*path, *key), message))
        if unread:
            self.unread.add((*path, *key))

    def _scalar(self, event: yaml.ScalarEvent, line: int) -> Any:
        tag, text = event.tag, event.value
        if tag is None and event.implicit[0]:  # plain: its text says what it is
            tag = self.tags.get(text)
            if tag is None:
                tag = self.loader.resolve(ScalarNode, text, event.implicit)
                if len(self.tags) < 65536:
                    self.tags[text] = tag
        elif tag is None or tag == "!":
            tag = self.loader.resolve(ScalarNode, text, event.implicit)
        if tag == _MERGE:
            return _MERGE_KEY if self._awaiting_key() else text
        if tag in (_TAG + "str", _TAG + "value"):
            return text
        if tag in (_TAG + "int", _TAG + "float") and len(text) > MAX_NUMBER_CHARS:
            self._problem(
                f"{excerpt(text)} is too long for a number; no setting takes one of more "
                f"than {MAX_NUMBER_CHARS} characters",
                unread=True,
            )
            return text
        convert = _SCALARS.get(tag)
        if convert is None:
            self._unsupported(tag)
            return text
        try:
            return convert(self.loader, ScalarNode(tag, text))
        except Exception:  # PyYAML's converters fail in many ways on bad text
            self._problem(f"{excerpt(text)} is not a valid {tag.removeprefix(_TAG)}", unread=True)
            return text

    def _awaiting_key(self) -> bool:
        return (
            bool(self.open)
            and isinstance(self.open[-1].value, YamlMap)
            and (self.open[-1].awaiting_key)
        )

    def _unsupported(self, tag: str) -> None:
        shown = tag.replace(_TAG, "!!")
        self._problem(
            f"tag {excerpt(shown)} is not supported; write the value without a tag "
            "(quote it to make it text)",
            unread=True,
        )

    def _stop(self, message: str, line: int | None) -> None:
        raise ConfigError([ConfigProblem("", message, line)], self.source)

    def _syntax_error(self, exc: yaml.YAMLError) -> ConfigError:
        line: int | None = None
        if isinstance(exc, yaml.reader.ReaderError):
            # libyaml counts bytes of the UTF-8 text, not characters.
            utf8 = self.text.encode("utf-8", "surrogatepass")
            line = utf8.count(b"\n", 0, exc.position) + 1
            problem = f"character #x{exc.character:04x} is not allowed ({exc.reason})"
        else:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
        return ConfigError([ConfigProblem("", f"not valid YAML: {problem}", line)], self.source)


# PyYAML's own conversions of the scalars a config uses; text stays text.
_SCALARS = {
    _TAG + kind: yaml.constructor.SafeConstructor.yaml_constructors[_TAG + kind]
    for kind in ("null", "bool", "int", "float", "timestamp")
}


def _merged(done: _Open) -> YamlMap:
    """YAML's merge keys: the merged mappings' keys, earlier ones first, then the
    mapping's own, which win."""
    merged = YamlMap()
    for source in done.merges:
        for key, value in source.items():
            if key not in merged:
                merged[key] = value
                merged.lines[key] = source.lines[key]
    own = done.value
    assert isinstance(own, YamlMap)
    merged.update(own)
    merged.lines.update(own.lines)
    return merged


def _line(event: yaml.Event) -> int:
    mark = event.start_mark  # libyaml marks every event
    return mark.line + 1 if mark is not None else 0


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _kind_of(value: object) -> str:
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__
