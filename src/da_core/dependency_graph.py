"""The module dependency graph: order, cycles, subscriptions and the readers of each output."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from da_core.config import Catalog, find_cycle
from da_core.errors import ConfigError


@attrs.frozen(slots=True)
class DependencyGraph:
    """Modules and the modules they depend on (edges point from a module to its dependencies).

    Built from a validated ``Catalog``; ``from_edges`` raises ``ConfigError`` naming a cycle or an
    unknown module.
    """

    _edges: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_edges(cls, edges: Mapping[str, tuple[str, ...] | list[str]]) -> DependencyGraph:
        problems = [
            f"{name} depends on unknown module {dep!r}"
            for name, deps in edges.items()
            for dep in deps
            if dep not in edges
        ]
        if problems:
            raise ConfigError(problems)
        frozen = {name: tuple(deps) for name, deps in edges.items()}
        cycle = find_cycle(frozen)
        if cycle:
            raise ConfigError("dependency cycle " + " -> ".join(cycle))
        return cls(frozen)

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> DependencyGraph:
        return cls.from_edges({n: m.dependencies for n, m in catalog.modules.items()})

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(self._edges)

    def dependencies(self, module: str) -> tuple[str, ...]:
        return self._edges[module]

    def dependents(self, module: str) -> tuple[str, ...]:
        """The modules that read ``module``'s output, in topological order."""
        return tuple(m for m in self.topological_order() if module in self._edges[m])

    def topological_order(self) -> tuple[str, ...]:
        """Every module after all of its dependencies; ties broken by name for stability."""
        placed: list[str] = []
        done: set[str] = set()
        remaining = sorted(self._edges)
        while remaining:
            ready = [m for m in remaining if all(d in done for d in self._edges[m])]
            # from_edges guarantees acyclicity, so ``ready`` is never empty here.
            for m in ready:
                placed.append(m)
                done.add(m)
            remaining = [m for m in remaining if m not in done]
        return tuple(placed)

    def upstream(self, module: str) -> tuple[str, ...]:
        """Every module ``module`` depends on, directly or not, in topological order."""
        seen: set[str] = set()
        stack = list(self._edges[module])
        while stack:
            m = stack.pop()
            if m not in seen:
                seen.add(m)
                stack.extend(self._edges[m])
        return tuple(m for m in self.topological_order() if m in seen)


def subscriptions(catalog: Catalog, module: str) -> tuple[str, ...]:
    """A module's subscriptions: its input topics plus the output topics of its dependencies."""
    return catalog.subscriptions(module)


def readers_of_output(catalog: Catalog) -> dict[str, tuple[str, ...]]:
    """Output topic → the modules that read it (the dependents of its module)."""
    graph = DependencyGraph.from_catalog(catalog)
    return {catalog.output_topic_of(m): graph.dependents(m) for m in graph.topological_order()}
