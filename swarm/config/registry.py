"""One registry per pluggable kind: the options of a group are its yaml files, a component's settings its signature.

A group of pluggable components (method, generator, taker, judge, verifier, and the
objective's components) lists its options as the yaml files in ``conf/<group>/``
(``choices(group)``: the one list). Each yaml names a ``_target_`` and gives values;
the target's **parameters are its settings** -- their names, types and rules, written
once beside the component -- but those the run passes it by name (the group core's
``RUNTIME``: a method's ``ctx``, a source's ``task`` and ``seed``, a judge's ``generate``):

    def ties(ctx: RunContext, *, combination: Literal["ties", "dare_ties"],
             density: Annotated[float, Interval(gt=0, le=1)], weights: list[float] | None) -> SearchResult

So a new component with options is one module and one yaml. ``check_options``
validates a node against its target (pydantic: types, ``Literal`` choices,
``annotated_types`` bounds, ``AfterValidator`` rules, no infinite numbers) and names
the setting in one line; ``target_settings`` is what the run passes to the target.
The settings the run itself reads (a method's ``name``, a generator's writing
settings, a judge's ``max_missing_fraction``) are the group's *core*: a dataclass in
this package's schema, checked before any component is imported; a core setting
that is also a parameter of the target (SmolLM2's source trains with the generator's
template) reaches the target too. A target with ``**kwargs`` takes every other setting
unchecked. The run's live objects reach a target by the names of its parameters
(``runtime_arguments``).

Checking a component imports its module (so a bad ``method.density`` is reported
after torch loads, before any model does); the core groups never do.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.resources
import inspect
import typing
from pathlib import Path
from typing import Any, Callable, Mapping

from omegaconf import DictConfig, OmegaConf

from swarm.runtime.errors import ConfigError, first_line

CONF_DIR = Path(str(importlib.resources.files("data_swarms_conf")))  # the repo's conf/, installed under the project's name
HYDRA_KEYS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")


def choices(group: str) -> list[str]:
    """The options of a config group, sorted: its conf/<group>/*.yaml files (the one list of them)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def resolve(target: str, key: str) -> Callable:
    """The callable a ``_target_`` names; a ConfigError naming ``key`` when it cannot be found."""
    module, _, name = str(target).rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name) if module else None
    except ImportError as err:
        raise ConfigError(f"{key}: cannot import {target!r} ({first_line(err)})") from None
    except AttributeError:
        found = None
    if not callable(found):
        raise ConfigError(f"{key}: {target!r} is not a function or class in module {module!r}")
    return found


@functools.lru_cache(maxsize=None)
def settings_of(target: Callable, runtime: tuple[str, ...] = ()) -> tuple[dict[str, inspect.Parameter], bool]:
    """The named parameters of ``target`` (a class: of its ``__init__``) but those in ``runtime`` (what the
    run passes it), with their annotations resolved, and whether it also takes ``**kwargs``."""
    function = target.__init__ if inspect.isclass(target) else target
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except (NameError, TypeError):  # an annotation that does not resolve: its names only
        hints = {}
    params = inspect.signature(target).parameters
    own = {
        name: p.replace(annotation=hints.get(name, Any if p.annotation is p.empty else p.annotation))
        for name, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in runtime
    }
    return own, any(p.kind is p.VAR_KEYWORD for p in params.values())


def runtime_of(core: type | None) -> tuple[str, ...]:
    """What the run passes a group's targets by name (the core's ``RUNTIME``): not settings."""
    return tuple(getattr(core, "RUNTIME", ()))


@functools.lru_cache(maxsize=None)
def _validator(target: Callable, runtime: tuple[str, ...]):
    """A pydantic model of ``target``'s settings (built once per target)."""
    import pydantic

    own, _ = settings_of(target, runtime)
    fields = {name: (p.annotation, ... if p.default is p.empty else p.default) for name, p in own.items()}
    config = pydantic.ConfigDict(arbitrary_types_allowed=True, allow_inf_nan=False)  # no setting is infinite
    return pydantic.create_model(f"Settings_{target.__qualname__}", __config__=config, **fields)


def _message(key: str, error: Mapping[str, Any]) -> str:
    where = key + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
    text = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if error["type"] == "missing":
        return f"{where}: required setting is missing"
    if error["type"] in ("value_error", "assertion_error"):  # a rule's own message says what it got
        return f"{where}: {text}"
    return f"{where}: {text[:1].lower()}{text[1:]}, got {error['input']!r}"


def check_options(node: DictConfig, key: str, core: type | None = None) -> dict[str, Any]:
    """The settings ``node``'s ``_target_`` takes, validated against its signature; ConfigError naming the
    first bad one (``key.setting``). ``core``: the group's core dataclass, whose fields are the run's."""
    import pydantic

    target = resolve(node["_target_"], f"{key}._target_")
    runtime = runtime_of(core)
    own, open_ended = settings_of(target, runtime)
    core_keys = {f.name for f in dataclasses.fields(core)} if core is not None else set()
    values = OmegaConf.to_container(node, resolve=True)
    for name in values:
        if name not in own and name not in core_keys and name not in HYDRA_KEYS and not open_ended:
            known = ", ".join(sorted(own)) or "none"
            raise ConfigError(f"{key}.{name}: not a setting of {node['_target_']} (its settings: {known})")
    given = {name: v for name, v in values.items() if name in own}
    try:
        checked = _validator(target, runtime).model_validate(given)
    except pydantic.ValidationError as err:
        raise ConfigError(_message(key, err.errors()[0])) from None
    extra = {n: v for n, v in values.items() if open_ended and n not in own and n not in core_keys and n not in HYDRA_KEYS}
    return {**{name: getattr(checked, name) for name in own if name in given or own[name].default is not own[name].empty},
            **extra}


def runtime_arguments(node: DictConfig, key: str, available: Mapping[str, Any]) -> dict[str, Any]:
    """The run's live objects ``node``'s target takes by name: the ``available`` entries (a judge's
    ``generate``, an endpoint caller's ``usage``; the group's core ``RUNTIME`` names) it has a parameter for."""
    target = resolve(node["_target_"], f"{key}._target_")
    params = inspect.signature(target).parameters
    return {name: value for name, value in available.items() if name in params}


def target_settings(node: DictConfig, key: str, core: type | None = None) -> dict[str, Any]:
    """The node as ``hydra.utils.instantiate`` should see it: the Hydra keys and the target's own settings,
    validated (so a float setting given as ``1`` arrives as ``1.0``)."""
    settings = check_options(node, key, core)
    fields = {f.name: f for f in dataclasses.fields(core)} if core is not None else {}
    defaults = {k: fields[k].default for k in HYDRA_KEYS if k in fields and isinstance(fields[k].default, bool)}
    return {**defaults, **{k: node[k] for k in HYDRA_KEYS if k in node}, **settings}
