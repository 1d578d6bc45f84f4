"""The schema of every config group: typed dataclasses, registered in Hydra's ConfigStore.

Each option's yaml in conf/ starts from its schema (``defaults: [/schema/judge/openai@_here_]``)
and holds the values; the dataclass holds the types and the rules. OmegaConf
enforces the types while the config composes (``pso.inertia=abc`` fails there);
``__post_init__`` checks ranges, cross-field rules, files and environment
variables when :func:`swarm.config.check` turns the config into these objects,
before torch or any model loads. Every message starts with the setting.

A node's ``_target_`` names what :func:`swarm.config.instantiate` builds from it;
``RUN_ONLY`` lists the settings the run itself reads, which are not passed to
the target. The groups of pluggable components (``CORES``: generator, taker,
judge, verifier, method) have one core dataclass each, the run's settings; a component's own
settings are the keyword-only parameters of its target (swarm/config/registry.py). A value lives in one place: the option's yaml, or here when every
option of the group shares it (the objective's knobs, the ``_partial_`` flags).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional

from omegaconf import MISSING

from swarm.config import rules
from swarm.config.inputs import ArithTaskConf, GeneratorConf, HfTaskConf, JsonTaskConf, TakerConf
from swarm.config.scoring import JudgeConf, VerifierConf
from swarm.config.search import PSOConf, SelectConf
from swarm.runtime.errors import ConfigError
from swarm.runtime.wandb_mode import check_online

# ---------------------------------------------------------------------------------- objective


@dataclass
class ObjectiveConf:
    """utility = sum_k weights[k] * component_k x valid fraction (objectives/metrics.py: WeightedSum);
    ``validity=none``: without the valid fraction (the paper: the objective on the valid items only).

    ``components`` adds components of your own, each built from its ``_target_``
    (a callable on ``ObjectiveInputs`` returning one value per particle).
    """

    RUN_ONLY: ClassVar[tuple[str, ...]] = ("name", "realism_top_k", "novelty_items")
    _target_: str = "objectives.metrics.WeightedSum"
    name: str = MISSING
    weights: Dict[str, float] = MISSING
    components: Dict[str, Any] = field(default_factory=dict)
    chunks: int = 4  # consistency: chunks of the data
    novelty_eps: float = 0.001  # novelty: additive smoothing, keeps the KL finite
    realism_top_k: int = 5  # realism: BM25 neighbours averaged
    novelty_items: int = 100  # dev items whose taker scores are the novelty reference (computed once)
    validity: str = "multiply"  # multiply: utility x valid fraction | none: the objective on the valid items only

    def __post_init__(self) -> None:
        from objectives.registry import COMPONENTS, VALIDITY, check_weights  # no torch: names and rules only

        try:
            check_weights(self.weights, {*COMPONENTS, *self.components})
        except ValueError as err:
            raise ConfigError(str(err)) from None
        rules.at_least("objective.chunks", self.chunks, 1)
        rules.positive("objective.novelty_eps", self.novelty_eps)
        rules.at_least("objective.realism_top_k", self.realism_top_k, 1)
        rules.at_least("objective.novelty_items", self.novelty_items, 1)
        rules.one_of("objective.validity", self.validity, VALIDITY, " or ".join(VALIDITY))


# ---------------------------------------------------------------------------------- search


@dataclass
class MethodConf:
    """The run's settings of a search, ``_target_(ctx, **settings) -> SearchResult``: ``name`` is what
    summary.json reports. The method's own settings are its parameters (swarm/config/registry.py)."""

    RUNTIME: ClassVar[tuple[str, ...]] = ("ctx",)  # what the run passes the target: the RunContext
    _target_: str = MISSING
    _partial_: bool = True
    name: str = MISSING


# ---------------------------------------------------------------------------------- logger, top level


@dataclass
class LoggerConf:
    kind: str = MISSING  # none


@dataclass
class WandbConf(LoggerConf):
    project: str = MISSING
    entity: Optional[str] = None
    mode: Optional[str] = None  # null: online if WANDB_API_KEY is set, else offline
    group: Optional[str] = None  # null: the sweep dir's name for -m runs
    name: Optional[str] = None  # null: the run's overrides
    tags: List[str] = field(default_factory=list)
    table_items: int = MISSING  # generated items per step in the W&B table "items" (0: none)
    table_every: int = MISSING  # the table every this many steps, and at the last step

    def __post_init__(self) -> None:
        rules.at_least("logger.table_items", self.table_items, 0)
        rules.at_least("logger.table_every", self.table_every, 1)
        rules.one_of("logger.mode", self.mode, (None, "online", "offline", "disabled"), "null, online, offline or disabled")
        check_online(self.mode)


@dataclass
class ZooConf:
    size: str = MISSING  # default | tiny (tests)
    seed: int = MISSING


@dataclass
class ExportConf:
    n_items: int = MISSING

    def __post_init__(self) -> None:
        rules.at_least("export.n_items", self.n_items, 1)


@dataclass
class BatchingConf:
    """Multi-LoRA batching (generators/models/multi_lora.py): every particle and every taker in one forward pass."""

    multi_lora: bool = MISSING  # false: one adapter at a time (the per-particle path)
    max_batch_tokens: int = MISSING  # rows x (prompt + new tokens) per forward pass: the KV-cache budget of a chunk

    def __post_init__(self) -> None:
        rules.at_least("batching.max_batch_tokens", self.max_batch_tokens, 1)


@dataclass
class DataConf:
    save_steps: bool = MISSING


@dataclass
class EndpointsConf:
    """What every OpenAI-compatible caller of a run shares (objectives/endpoints.py): served takers,
    judge=openai, verifier=openai."""

    cache: bool = MISSING  # replies on disk, keyed by model, prompt and sampling settings
    cache_dir: Optional[str] = None  # null: $DSWARM_CACHE/endpoints (else <repo>/.cache/endpoints)
    prices: Dict[str, Dict[str, float]] = field(default_factory=dict)  # model -> {prompt, completion}: $ per 1M tokens

    def __post_init__(self) -> None:
        for model, price in self.prices.items():
            for kind, value in price.items():
                rules.one_of(f"endpoints.prices.{model}", kind, ("prompt", "completion"), "{prompt: $, completion: $}")
                rules.finite_at_least_zero(f"endpoints.prices.{model}.{kind}", value)


@dataclass
class SweepConf:
    metric: str = MISSING  # a dotted key of summary.json that the app returns to sweepers


@dataclass
class SlurmConf:
    """Read by hydra/launcher=slurm (conf/hydra/launcher/slurm.yaml)."""

    partition: Optional[str] = None
    account: Optional[str] = None
    gpus_per_task: int = MISSING
    cpus_per_task: int = MISSING
    mem_gb: int = MISSING
    time_min: int = MISSING
    max_requeues: int = MISSING
    array_parallelism: int = MISSING

    def __post_init__(self) -> None:
        for key in ("cpus_per_task", "mem_gb", "time_min", "array_parallelism"):
            rules.at_least(f"slurm.{key}", getattr(self, key), 1)
        for key in ("gpus_per_task", "max_requeues"):
            rules.at_least(f"slurm.{key}", getattr(self, key), 0)


@dataclass
class Config:
    """The whole run. Each group's node is typed by its option's schema above."""

    task: Any = MISSING
    generator: Any = MISSING
    taker: Any = MISSING
    judge: Any = MISSING
    verifier: Any = MISSING
    objective: Any = MISSING
    method: Any = MISSING
    pso: Any = MISSING
    logger: Any = MISSING
    seed: int = MISSING
    device: str = MISSING
    dtype: str = MISSING
    progress: bool = MISSING
    threads: Optional[int] = None
    zoo: ZooConf = MISSING
    export: ExportConf = MISSING
    select: SelectConf = MISSING
    batching: BatchingConf = MISSING
    data: DataConf = MISSING
    endpoints: EndpointsConf = MISSING
    sweep: SweepConf = MISSING
    slurm: SlurmConf = MISSING

    def __post_init__(self) -> None:
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {self.device!r}")
        rules.one_of("dtype", self.dtype, ("auto", "float32", "bfloat16", "float16"), "auto, float32, bfloat16 or float16")
        if self.threads is not None:
            rules.at_least("threads", self.threads, 1)


# The groups of pluggable components: the core (the run's settings) of each; a component's own settings
# are its target's keyword-only parameters (swarm/config/registry.py), so these groups have no per-option schema.
CORES: dict[str, type] = {
    "generator": GeneratorConf, "taker": TakerConf, "judge": JudgeConf, "verifier": VerifierConf, "method": MethodConf,
}

SCHEMAS: dict[str, dict[str, type]] = {  # group -> option -> schema (ConfigStore: schema/<group>/<option>)
    "task": {"arith": ArithTaskConf, "json": JsonTaskConf, "hf": HfTaskConf},
    "objective": {"weighted": ObjectiveConf},
    "pso": {"pso": PSOConf},
    "logger": {"none": LoggerConf, "wandb": WandbConf},
}
