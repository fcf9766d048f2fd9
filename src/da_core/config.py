"""The configuration model: frozen values, validated once.

``Catalog`` holds topics and modules; ``Catalog.validate()`` (called by ``build_catalog``)
collects *every* problem and raises one ``ConfigError`` listing them, each naming the key and
the fix. Nothing deeper in the code re-reads raw dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from da_core.errors import ConfigError
from da_core.limits import DEFAULT_LIMITS, IntakeLimits

ExtractorKind = Literal["object", "array", "wrapped", "global", "envelope"]
WindowKind = Literal["latest", "hourly_grid", "second_snapshot", "per_device"]
FillName = Literal["zero", "linear", "forward", "missing"]
OutputMode = Literal["batch", "station"]

EXTRACTOR_KINDS: tuple[str, ...] = ("object", "array", "wrapped", "global", "envelope")
WINDOW_KINDS: tuple[str, ...] = ("latest", "hourly_grid", "second_snapshot", "per_device")
FIELD_TYPES: tuple[str, ...] = ("any", "number", "string", "number_list", "string_list", "object")
FILL_NAMES: tuple[str, ...] = ("zero", "linear", "forward", "missing")
OUTPUT_MODES: tuple[str, ...] = ("batch", "station")

MODULE_OUTPUT_PREFIX = "MODULE-OUTPUT-"


def default_output_topic(module: str) -> str:
    """The default output topic: ``SOH_model`` → ``MODULE-OUTPUT-SOH_MODEL``."""
    return MODULE_OUTPUT_PREFIX + module.upper()


def default_topic_key(topic: str) -> str:
    """A topic's structure name in a module input: ``SCHEDULE-CAR-ORDER`` → ``car_order``."""
    name = topic[len("SCHEDULE-") :] if topic.startswith("SCHEDULE-") else topic
    return name.lower().replace("-", "_").replace(".", "_")


@attrs.frozen(slots=True)
class TopicConfig:
    """One input topic: how to split its records per station and how to window them.

    * ``extractor``: ``object`` (one JSON object carrying ``station_key``), ``array`` (a JSON
      array of such objects), ``wrapped`` (an object whose ``wrapper_key`` holds such an array),
      ``global`` (no station: the value applies to every station; ``wrapper_key`` optional),
      ``envelope`` (a module result envelope, split by each result's ``station_id``).
    * ``window``: ``latest`` (last ``window_size`` items by record time), ``hourly_grid``
      (slots keyed by ``time_key``), ``second_snapshot`` (all items of one second form one
      snapshot), ``per_device`` (newest item per ``device_key``).
    * ``fields``: the configured field names; each appears in the module input (prefixed by
      ``alias`` + ``_`` when an alias is set). ``gun_fields`` (hourly grid only) are per-gun
      arrays under ``gun_key``, aligned to one union gun list per window.
    * ``field_types``: optional expected type per field (``number``, ``string``,
      ``number_list``, ``string_list``, ``object``, ``any``: the default). A value of the wrong
      type, a non-finite number or an array longer than ``max_array_len`` is treated as missing
      and counted; the rest of the record is used.
    * ``expire_seconds``: how long an entry of this topic counts as available and is kept
      (``None``: the catalog's ``data_expire_seconds``; ``math.inf``: never, for topics sent
      once such as station parameters).
    * ``freshness_seconds``: a per-topic limit past which the topic counts as stale even when
      it has not expired (``None``: only ``data_expire_seconds`` applies).
    * ``optional``: a station may lack this topic for good (a device it does not have, events
      it may never send): the default readiness rule does not wait for it (it shows in
      ``_data_quality.missing_topics`` instead). An explicit ``required_topics`` still may.
    """

    name: str
    extractor: str = "object"
    window: str = "latest"
    window_size: int = 1
    fields: tuple[str, ...] = ()
    field_types: Mapping[str, str] = attrs.field(factory=dict)
    station_key: str = "stationId"
    wrapper_key: str | None = None
    time_key: str | None = None
    time_format: str = "%Y-%m-%d %H:%M:%S"
    device_key: str | None = None
    gun_key: str | None = None
    gun_id_field: str = "gunNo"
    gun_fields: tuple[str, ...] = ()
    slot_list_prefix: str | None = None
    slot_list_name: str | None = None
    slot_list_size: int = 0
    is_global: bool = False
    freshness_seconds: float | None = None
    expire_seconds: float | None = None
    alias: str | None = None
    key: str = ""
    fill: str | None = None
    field_fill: Mapping[str, str] = attrs.field(factory=dict)
    frequency: str = ""
    modules: tuple[str, ...] = ()
    max_items: int = 10_000
    max_array_len: int = 100_000
    snapshot_grace_seconds: float = 1.0
    optional: bool = False

    @property
    def structure_key(self) -> str:
        return self.key or default_topic_key(self.name)

    def flat_name(self, field: str) -> str:
        return f"{self.alias}_{field}" if self.alias else field

    def all_fields(self) -> tuple[str, ...]:
        return self.fields + self.gun_fields


@attrs.frozen(slots=True)
class ReadinessRule:
    """When a station first runs. ``required_topics`` None means every non-global input topic
    that is not ``optional``;
    ``min_ratio`` (0..1), when set, instead asks that share of input topics to be available.
    Dependencies are optional unless listed in ``required_dependencies``."""

    required_topics: tuple[str, ...] | None = None
    min_ratio: float | None = None
    required_dependencies: tuple[str, ...] = ()


@attrs.frozen(slots=True)
class BatchPolicy:
    """``timeout_seconds``: a batch uploads at most this long after it formed;
    ``completion_ratio``: the share of members whose runs finished that completes it early."""

    timeout_seconds: float = 5.0
    completion_ratio: float = 1.0


@attrs.frozen(slots=True)
class TriggerPolicy:
    """``interval_seconds``: also run every ready station this often (None: event-driven only).
    ``callback_max_retries``/``callback_retry_delay``: a failing station is retried this many
    times, this many seconds apart, before its held records are released.
    ``min_run_interval``: a station's runs start at least this many seconds apart (0: as soon
    as it is dirty); updates meanwhile coalesce into the next run, which starts when the
    interval has passed (per-second order data would otherwise run a station several times a
    second, once per completed second of each gun)."""

    interval_seconds: float | None = None
    callback_max_retries: int = 3
    callback_retry_delay: float = 1.0
    min_run_interval: float = 0.0


@attrs.frozen(slots=True)
class OffsetCommitPolicy:
    """The guide's ``OFFSET_COMMIT_CONFIG``: commit when ``commit_batch_size`` records are done
    or ``commit_interval_seconds`` passed, whichever first; retry a failed commit
    ``max_commit_retries`` times ``commit_retry_delay`` seconds apart."""

    commit_interval_seconds: float = 5.0
    commit_batch_size: int = 100
    max_commit_retries: int = 3
    commit_retry_delay: float = 1.0


@attrs.frozen(slots=True)
class ModuleConfig:
    """One analysis module (model): what it reads, what it depends on, where it publishes."""

    name: str
    inputs: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    output_topic: str = ""
    fill_strategy: str = "zero"
    field_fill: Mapping[str, str] = attrs.field(factory=dict)
    readiness: ReadinessRule = ReadinessRule()
    trigger: TriggerPolicy = TriggerPolicy()
    batch: BatchPolicy = BatchPolicy()
    output_mode: str = "batch"

    @property
    def output(self) -> str:
        return self.output_topic or default_output_topic(self.name)


@attrs.frozen(slots=True)
class Catalog:
    """Topics, modules and the commit policy of a deployment; ``limits``: the bounds of
    intake (``da_core.limits``), filled from the service settings."""

    topics: Mapping[str, TopicConfig]
    modules: Mapping[str, ModuleConfig]
    commit: OffsetCommitPolicy = OffsetCommitPolicy()
    data_expire_seconds: float = 600.0
    dead_letter_topic: str = "DATA-ANALYSIS-DEAD-LETTER"
    limits: IntakeLimits = DEFAULT_LIMITS

    def expire_of(self, topic: str) -> float:
        """Seconds an entry of ``topic`` stays available (``math.inf``: never)."""
        t = self.topics.get(topic)
        if t is None or t.expire_seconds is None:
            return self.data_expire_seconds
        return t.expire_seconds

    def module(self, name: str) -> ModuleConfig:
        try:
            return self.modules[name]
        except KeyError:
            known = ", ".join(sorted(self.modules))
            raise ConfigError(f"unknown module {name!r}; known modules: {known}") from None

    def output_topic_of(self, module: str) -> str:
        return self.module(module).output

    def module_of_output(self, topic: str) -> str | None:
        for m in self.modules.values():
            if m.output == topic:
                return m.name
        return None

    def subscriptions(self, module: str) -> tuple[str, ...]:
        """The topics a module reads: its inputs, then the output topics of its dependencies."""
        m = self.module(module)
        deps = tuple(self.output_topic_of(d) for d in m.dependencies if d in self.modules)
        return m.inputs + deps

    def replace_module(self, module: ModuleConfig) -> Catalog:
        modules = dict(self.modules)
        modules[module.name] = module
        return attrs.evolve(self, modules=modules)

    def validate(self) -> Catalog:
        """Raise ``ConfigError`` listing every problem; return self when there is none."""
        problems = list(_problems(self))
        if problems:
            raise ConfigError(problems)
        return self


def _problems(cat: Catalog) -> Iterable[str]:
    for name, t in cat.topics.items():
        where = f"topics.{name}"
        if t.name != name:
            yield f"{where}: name {t.name!r} differs from its key"
        if t.extractor not in EXTRACTOR_KINDS:
            yield f"{where}.extractor: {t.extractor!r} is not one of {', '.join(EXTRACTOR_KINDS)}"
        if t.window not in WINDOW_KINDS:
            yield f"{where}.window: {t.window!r} is not one of {', '.join(WINDOW_KINDS)}"
        if not isinstance(t.window_size, int) or t.window_size < 1:
            yield f"{where}.window_size: must be an integer >= 1 (got {t.window_size!r})"
        if t.extractor == "wrapped" and not t.wrapper_key:
            yield f"{where}.wrapper_key: required for a 'wrapped' extractor"
        if t.window == "hourly_grid" and not t.time_key:
            yield f"{where}.time_key: required for an 'hourly_grid' window (e.g. 'sendTime')"
        if t.window == "per_device" and not t.device_key:
            yield f"{where}.device_key: required for a 'per_device' window (e.g. 'hostCode')"
        if t.extractor != "envelope" and not t.fields and not t.gun_fields:
            yield f"{where}.fields: empty; list the payload fields the modules need"
        if t.is_global != (t.extractor == "global"):
            yield f"{where}: 'global' extractor and is_global must go together"
        for f in (t.fill, *t.field_fill.values()):
            if f is not None and f not in FILL_NAMES:
                yield f"{where}.fill: {f!r} is not one of {', '.join(FILL_NAMES)}"
        if t.expire_seconds is not None and not t.expire_seconds > 0:
            yield f"{where}.expire_seconds: must be > 0 (or 'never')"
        if t.freshness_seconds is not None and t.freshness_seconds <= 0:
            yield f"{where}.freshness_seconds: must be > 0"
        for f, ft in t.field_types.items():
            if ft not in FIELD_TYPES:
                yield f"{where}.field_types.{f}: {ft!r} is not one of {', '.join(FIELD_TYPES)}"
        dup = _dups(t.all_fields())
        if dup:
            yield f"{where}.fields: listed twice: {', '.join(dup)}"
    if cat.data_expire_seconds <= 0:
        yield "data_expire_seconds: must be > 0"
    c = cat.commit
    if c.commit_batch_size < 1:
        yield "OFFSET_COMMIT_CONFIG.commit_batch_size: must be >= 1"
    if c.commit_interval_seconds <= 0:
        yield "OFFSET_COMMIT_CONFIG.commit_interval_seconds: must be > 0"
    if c.max_commit_retries < 0:
        yield "OFFSET_COMMIT_CONFIG.max_commit_retries: must be >= 0"
    if c.commit_retry_delay < 0:
        yield "OFFSET_COMMIT_CONFIG.commit_retry_delay: must be >= 0"
    outputs: dict[str, str] = {}
    for name, m in cat.modules.items():
        where = f"modules.{name}"
        if m.name != name:
            yield f"{where}: name {m.name!r} differs from its key"
        if not m.inputs and not m.dependencies:
            yield f"{where}.inputs: the module reads nothing; list its input topics"
        for topic in m.inputs:
            if topic not in cat.topics:
                yield f"{where}.inputs: unknown topic {topic!r}; add it to the topics"
        for dep in m.dependencies:
            if dep not in cat.modules:
                yield f"{where}.dependencies: unknown module {dep!r}"
            if dep == name:
                yield f"{where}.dependencies: a module cannot depend on itself"
        if m.fill_strategy not in FILL_NAMES:
            names = ", ".join(FILL_NAMES)
            yield f"{where}.fill_strategy: {m.fill_strategy!r} is not one of {names}"
        for f in m.field_fill.values():
            if f not in FILL_NAMES:
                yield f"{where}.field_fill: {f!r} is not one of {', '.join(FILL_NAMES)}"
        if m.output_mode not in OUTPUT_MODES:
            yield f"{where}.output_mode: {m.output_mode!r} is not one of {', '.join(OUTPUT_MODES)}"
        b = m.batch
        if b.timeout_seconds <= 0:
            yield f"{where}.batch_timeout: must be > 0"
        if not 0 < b.completion_ratio <= 1:
            yield f"{where}.completion_ratio: must be in (0, 1]"
        r = m.readiness
        if r.min_ratio is not None and not 0 <= r.min_ratio <= 1:
            yield f"{where}.readiness.min_ratio: must be in [0, 1]"
        for topic in r.required_topics or ():
            if topic not in m.inputs:
                yield f"{where}.readiness.required_topics: {topic!r} is not an input of {name}"
        for dep in r.required_dependencies:
            if dep not in m.dependencies:
                yield f"{where}.readiness.required_dependencies: {dep!r} is not a dependency"
        if m.trigger.interval_seconds is not None and m.trigger.interval_seconds <= 0:
            yield f"{where}.interval_seconds: must be > 0"
        if m.output in outputs:
            yield f"{where}.output_topic: {m.output!r} is also the output of {outputs[m.output]}"
        outputs[m.output] = name
        if m.output in cat.topics:
            yield f"{where}.output_topic: {m.output!r} is also configured as an input topic"
        yield from _collisions(cat, m)
    cycle = find_cycle({n: m.dependencies for n, m in cat.modules.items()})
    if cycle:
        yield "MODULE_DEPENDENCIES: dependency cycle " + " -> ".join(cycle)


def _dups(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    dups: list[str] = []
    for n in names:
        if n in seen and n not in dups:
            dups.append(n)
        seen.add(n)
    return dups


RESERVED_NAMES = frozenset({"station_id", "module", "timestamp", "dependencies", "_data_quality"})


def _collisions(cat: Catalog, m: ModuleConfig) -> Iterable[str]:
    owner: dict[str, str] = {}
    for topic in m.inputs:
        t = cat.topics.get(topic)
        if t is None:
            continue
        names = [t.structure_key]
        for f in t.all_fields():
            names += [t.flat_name(f), t.flat_name(f) + "_window"]
        for n in names:
            if n in RESERVED_NAMES:
                yield (
                    f"modules.{m.name}: name {n!r} of topic {topic} is reserved; "
                    f"set an alias for {topic}"
                )
            elif n in owner and owner[n] != topic:
                yield (
                    f"modules.{m.name}: field name {n!r} comes from both {owner[n]} and {topic}; "
                    f"set an alias for one of them"
                )
            else:
                owner[n] = topic


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """Return one dependency cycle as ``[a, b, ..., a]``, or None when the graph is acyclic."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in colour:
                continue
            if colour[nxt] == grey:
                return [*stack[stack.index(nxt) :], nxt]
            if colour[nxt] == white:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = black
        return None

    for n in sorted(edges):
        if colour[n] == white:
            found = visit(n)
            if found:
                return found
    return None


def _as_tuple(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    problems.append(f"{where}: expected a list of names")
    return ()
