"""The house plan: modules per folder with their line counts, import cycles, arrows that point the wrong way.

    python -m tools.check_imports              # prints the plan; exit 1 on a cycle or a forbidden arrow
    python -m tools.check_imports --max-lines 300

Reads the source with `ast` (imports nothing it checks). Every import of a
repo module counts, also one inside a function (a lazy import is still an
arrow); ``from pkg import name`` points at ``pkg.name`` when that is a module.
A module over ``--max-lines`` is flagged (printed, not an error: the ~300-line
rule is a guide). Errors: an import cycle, a module of a folder importing a
folder it must not (``generators/`` and ``objectives/`` never import ``swarm/``;
nothing but the tests imports ``tests/``: what a benchmark or tool needs lives outside it),
or a room importing a room later in the flow (``ROOMS``: config → models →
generated items → scores → objectives → search → the run; a room may import
the rooms before it and itself), or a pure module (``PURE``: the PSO, tensor
code that takes checked numbers) importing any repo module it is not allowed.
"""
from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("swarm", "generators", "objectives", "tools", "benchmarks")
TESTS = "tests"  # known as an import target (so an arrow into it is seen), not itself planned
FORBIDDEN = {  # folder -> folders it must not import
    "swarm": (TESTS,),
    "generators": ("swarm", TESTS),
    "objectives": ("swarm", "generators", TESTS),
    "tools": (TESTS,),
    "benchmarks": (TESTS,),
}

# The rooms in the order data flows through them, each importing only rooms before it (and itself).
# A module's room is the longest entry that is its name or a prefix of it; modules in no room (tools,
# benchmarks) are held only to FORBIDDEN.
ROOMS = (
    "objectives.endpoints",  # the one HTTP client of OpenAI-compatible endpoints (judges, verifiers, served takers)
    "objectives.tasks",      # the item type and the tasks
    "objectives.judging",    # judges, verifiers, answer extraction, the score tensor
    "objectives",            # the objectives themselves: metrics, registry, realism
    "generators.models",     # one base LM, adapters, decoding, flat vectors, the models' cache
    "generators.prompts",    # few-shot prompts and the parser of numbered items
    "generators.training",   # the training loop, clusters, LoRA experts
    "generators.zoo",        # the embedded zoo
    "generators.sources",    # where models come from (zoo, HF dirs, SmolLM2)
    "generators.training.cli",  # dswarm-experts: trains on any source's base (smollm2 too)
    "generators.takers",     # taker panels and their entries
    "generators.writer",     # a generator writes items
    "swarm.runtime",         # errors, files, checkpoints, run dir, processes, tracking, sweeps
    "swarm.config",          # the typed schema
    "swarm.search",          # PSO, evaluation, the method contract, the methods
    "swarm.report",          # tables, statistics, publishing
    "swarm.build",           # config -> the run's objects
    "swarm.run",             # one run
    "swarm.cli",             # dswarm
)

# Pure tensor code: modules that import no repo module but the ones listed (no config, no model, no disk).
PURE = {
    "swarm.search.pso": ("swarm.search.velocity",),
    "swarm.search.velocity": (),
}


def room_of(module: str, rooms: tuple[str, ...] = ROOMS) -> str | None:
    """The longest room that is ``module`` or a package above it; None outside every room."""
    found = [r for r in rooms if module == r or module.startswith(r + ".")]
    return max(found, key=len) if found else None


@dataclass
class Plan:
    lines: dict[str, int] = field(default_factory=dict)  # module -> lines
    imports: dict[str, set[str]] = field(default_factory=dict)  # module -> repo modules it imports

    def folder(self, module: str) -> str:
        return module.split(".")[0]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The repo modules one import statement points at."""
    found = set()
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from . import x
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    for name in names:
        while name and name not in known:  # import a.b.c where only a.b is a repo module
            name = name.rpartition(".")[0]
        if name:
            found.add(name)
    return found


def read_plan(root: Path = REPO, packages: tuple[str, ...] = PACKAGES, targets_only: tuple[str, ...] = (TESTS,)) -> Plan:
    """Modules of ``packages`` and their imports; modules of ``targets_only`` count only as what is imported."""
    plan = Plan()
    files = {module_name(p, root): p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))}
    known = set(files) | {module_name(p, root) for pkg in targets_only for p in (root / pkg).rglob("*.py")}
    for module, path in files.items():
        text = path.read_text()
        plan.lines[module] = len(text.splitlines())
        tree = ast.parse(text, filename=str(path))
        imports: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imports |= _targets(node, module, path.name == "__init__.py", known)
        imports.discard(module)
        plan.imports[module] = {m for m in imports if not module.startswith(m + ".")}  # a package's own __init__ is no arrow
    return plan


def cycles(plan: Plan) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(plan.imports.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(plan.imports):
        if v not in index:
            visit(v)
    return sorted(out)


def wrong_way(plan: Plan, rooms: tuple[str, ...] = ROOMS) -> list[tuple[str, str]]:
    """(module, imported) pairs that break FORBIDDEN or PURE, or point from a room to a later one."""
    rank = {room: i for i, room in enumerate(rooms)}

    def backwards(m: str, t: str) -> bool:
        src, dst = room_of(m, rooms), room_of(t, rooms)
        return src is not None and dst is not None and rank[dst] > rank[src]

    return sorted(
        (m, t) for m, targets in plan.imports.items() for t in targets
        if plan.folder(t) in FORBIDDEN.get(plan.folder(m), ()) or backwards(m, t) or (m in PURE and t not in PURE[m])
    )


def report(plan: Plan, max_lines: int) -> str:
    lines = []
    for folder in sorted({plan.folder(m) for m in plan.lines}):
        modules = sorted(m for m in plan.lines if plan.folder(m) == folder)
        total = sum(plan.lines[m] for m in modules)
        lines.append(f"{folder}/  {len(modules)} modules, {total} lines")
        for m in modules:
            flag = f"   <-- over {max_lines}" if plan.lines[m] > max_lines else ""
            lines.append(f"  {plan.lines[m]:5d}  {m}{flag}")
    found = cycles(plan)
    lines.append(f"import cycles: {len(found)}")
    lines += [f"  {' <-> '.join(c)}" for c in found]
    arrows = wrong_way(plan)
    rules = "; ".join(f"{k}/ imports no {', '.join(f'{v}/' for v in vs)}" for k, vs in FORBIDDEN.items())
    lines.append(f"rooms in the order data flows (each imports only those before it): {' < '.join(ROOMS)}")
    pure = "; ".join(f"{m} imports {', '.join(ok) or 'no repo module'}" for m, ok in PURE.items())
    lines.append(f"imports against the arrows ({rules}; no room imports a later one; {pure}): {len(arrows)}")
    lines += [f"  {m} imports {t}" for m, t in arrows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-lines", type=int, default=300, help="flag modules longer than this")
    args = parser.parse_args(argv)
    plan = read_plan()
    sys.stdout.write(report(plan, args.max_lines))
    return 1 if cycles(plan) or wrong_way(plan) else 0


if __name__ == "__main__":
    sys.exit(main())
