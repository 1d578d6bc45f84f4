"""The run's configuration: one typed schema (swarm/config/schema.py), one registry per pluggable kind
(swarm/config/registry.py) and one way to build components.

    import swarm.config                       # registers the schema in Hydra's ConfigStore
    typed = swarm.config.check(cfg)           # ConfigError naming the first bad setting
    judge = swarm.config.instantiate(cfg.judge, "judge")          # hydra.utils.instantiate(_target_)
    judge = swarm.config.instantiate(cfg.judge, "judge", generate=fn)   # a _partial_ target, completed

Importing this package registers ``schema/<group>/<option>`` and ``schema/config``
in the ConfigStore; conf/*.yaml of the plain groups start from them. The groups of
pluggable components (``schema.CORES``) are checked in two stages: their core
settings with the rest of the schema (no torch), then each component's own settings
against its target's signature (which imports the target's module).
docs/configuration.md tells how to add a judge, an objective, a generator or a method.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import re
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException, ValidationError

from swarm.config.registry import CONF_DIR, HYDRA_KEYS, check_options, choices, resolve, target_settings
from swarm.config.schema import CORES, SCHEMAS, Config
from swarm.runtime.errors import ConfigError, first_line

__all__ = ["check", "check_components", "choices", "compose", "compose_run", "instantiate", "register", "settings", "Config"]


def register() -> None:
    """Store every schema in Hydra's ConfigStore (idempotent)."""
    store = ConfigStore.instance()
    store.store(group="schema", name="config", node=Config)
    for group, options in SCHEMAS.items():
        for option, schema in options.items():
            store.store(group=f"schema/{group}", name=option, node=schema)
    for group, core in CORES.items():  # typed core, open to the component's own settings (checked by its signature)
        node = OmegaConf.structured(core)
        OmegaConf.set_struct(node, False)
        store.store(group=f"schema/{group}", name="core", node=node)


def _targets(node: Any, key: str):
    """Every ``_target_`` under ``node``, with the key it is at."""
    if isinstance(node, DictConfig) and not node._is_none():
        for k, v in node.items_ex(resolve=False):
            if k == "_target_":
                yield key, v
            else:
                yield from _targets(v, f"{key}.{k}")


SECRET = re.compile(r"(api_?key|token|secret|password)$", re.IGNORECASE)


def _keys(node: Any, key: str = ""):
    if isinstance(node, DictConfig) and not node._is_none():
        for k in node.keys():
            yield f"{key}{k}"
            yield from _keys(node._get_node(k), f"{key}{k}.")


def _check_core(node: DictConfig, group: str, core: type) -> Any:
    """The core settings of a component group's ``node`` as ``core`` (its rules run); the defaults the
    yaml leaves out are filled into ``node``, so the run reads every core setting from it."""
    names = [f.name for f in dataclasses.fields(core) if f.name not in HYDRA_KEYS or f.name in node]
    given = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k in names}
    try:
        merged = OmegaConf.merge(OmegaConf.structured(core), given)
    except ValidationError as err:
        raise ConfigError(f"{group}.{err.full_key}: {first_line(err)}") from None
    missing = sorted(OmegaConf.missing_keys(merged))
    if missing:
        raise ConfigError(f"{group}.{missing[0]}: required setting is missing (set {group}.{missing[0]}=...)")
    typed = OmegaConf.to_object(merged)
    with open_dict(node):
        for name in (f.name for f in dataclasses.fields(core)):
            node[name] = merged[name]
    return typed


def check(cfg: DictConfig, components: bool = True) -> Config:
    """The typed config; raises ConfigError on the first setting the run cannot use. No model loads.

    No option may hold a secret (the config is saved in the run dir), and every
    ``_target_``'s module must be importable. The core settings are checked before any
    component's module is imported; then each component's own settings against its
    target's signature (swarm/config/registry.py), their checked values written back;
    ``components=False`` leaves that to a later ``check_components`` (the CLI holds the run dir's lock first).
    """
    secret = next((k for k in _keys(cfg) if SECRET.search(k)), None)
    if secret is not None:
        raise ConfigError(
            f"{secret}: API keys are never read from the config (it is saved in the run dir); "
            "put the key in an environment variable and name it with judge.api_key_env"
        )
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"{missing[0]}: required setting is missing (it is ??? in the config; set {missing[0]}=...)")
    cores = {group: _check_core(cfg[group], group, core) for group, core in CORES.items()}
    try:
        typed = OmegaConf.to_object(cfg)
    except ValidationError as err:
        raise ConfigError(f"{err.full_key}: {first_line(err)}") from None
    for group, core in cores.items():
        setattr(typed, group, core)
    for group in ("task", "generator", "taker", "judge", "objective", "method"):
        for key, target in _targets(cfg[group], group):
            module = str(target).rpartition(".")[0]
            try:
                found = importlib.util.find_spec(module) if module else None
            except (ImportError, ValueError):
                found = None
            if found is None:
                raise ConfigError(f"{key}._target_: cannot import {target!r} (no module {module!r}; is it on PYTHONPATH?)")
    if components:
        check_components(cfg)
    return typed


def check_components(cfg: DictConfig) -> None:
    """Each component's own settings against its target's signature (imports the targets' modules)."""
    for group, core in CORES.items():
        _write_back(cfg[group], check_options(cfg[group], group, core))
    for name, node in cfg.objective.components.items():
        _write_back(node, check_options(node, f"objective.components.{name}"))


def _write_back(node: DictConfig, settings: dict[str, Any]) -> None:
    """A component's checked settings into its node (a float given as ``1`` is ``1.0`` from then on)."""
    try:
        with open_dict(node):
            for name, value in settings.items():
                node[name] = value
    except OmegaConfBaseException:  # a value OmegaConf cannot hold (an object a validator made): keep the given one
        pass


def settings(node: DictConfig) -> dict[str, Any]:
    """A node's values as plain Python, without the settings the run itself reads (its schema's ``RUN_ONLY``):
    what its ``_target_`` takes, or for ``pso`` the keyword arguments of ``swarm.search.pso.PSO``."""
    run_only = getattr(OmegaConf.get_type(node), "RUN_ONLY", ())
    return {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k not in run_only}


def instantiate(node: DictConfig, group: str, *args: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` of a group's node without the settings the run itself reads: a component
    group's core settings its target does not take (``schema.CORES``), or a plain group's ``RUN_ONLY``.

    A target that cannot be found is a ConfigError naming ``<group>._target_``; an
    error raised by the target itself is re-raised as it is.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    if group in CORES:
        own = target_settings(node, group, CORES[group])
    else:
        own = settings(node)
        _check_call(own, group, args, kwargs)
    try:
        return hydra_instantiate(own, *args, **kwargs)
    except InstantiationException as err:
        if str(err).startswith("Error locating target") or err.__cause__ is None:
            raise ConfigError(f"{group}._target_: {first_line(err)}") from None
        raise err.__cause__ from None


def _check_call(own: dict[str, Any], group: str, args: tuple, kwargs: dict[str, Any]) -> None:
    """A plain group's target takes its settings (and the run's arguments): else one line naming ``<group>._target_``,
    not the TypeError of a call deep inside Hydra (an objective ``_target_`` naming a function, say)."""
    try:
        signature = inspect.signature(resolve(str(own.get("_target_")), f"{group}._target_"))
    except (ConfigError, TypeError, ValueError):  # not found (instantiate names it) or no signature to check
        return
    params = {k: v for k, v in own.items() if k not in HYDRA_KEYS}
    try:
        if own.get("_partial_"):  # the run completes the call later
            signature.bind_partial(*args, **kwargs, **params)
        else:
            signature.bind(*args, **kwargs, **params)
    except TypeError as err:
        raise ConfigError(f"{group}._target_: {own['_target_']} cannot be built from the {group} settings "
                          f"({', '.join(params) or 'none'}): {err}") from None


def compose(overrides: list[str], return_hydra_config: bool = False) -> DictConfig:
    """The config ``dswarm overrides`` would run, composed in this process (not yet checked)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides), return_hydra_config=return_hydra_config)


def compose_run(run_dir: str | Path) -> DictConfig:
    """A finished run's typed config, composed again from the overrides it was started with.

    ``.hydra/config.yaml`` holds the values but not their schema, so components could not be
    built from it (``instantiate`` needs each node's type to know its run-only settings).
    """
    overrides = OmegaConf.load(Path(run_dir) / ".hydra" / "overrides.yaml")
    return compose([o for o in overrides if not str(o).startswith("hydra.")])


register()
