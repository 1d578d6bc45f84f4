"""The schema of every config group: typed dataclasses, registered in Hydra's ConfigStore.

Each option's yaml in conf/ starts from its schema (``defaults: [/schema/judge/openai@_here_]``)
and holds the values; the dataclass holds the types and the rules. OmegaConf
enforces the types while the config composes (``pso.inertia=abc`` fails there);
``__post_init__`` checks ranges, cross-field rules, files and environment
variables when :func:`swarm.config.check` turns the config into these objects,
before torch or any model loads. Every message starts with the setting.

A node's ``_target_`` names what :func:`swarm.config.instantiate` builds from it;
``RUN_ONLY`` lists the settings the run itself reads, which are not passed to
the target. A value lives in one place: the option's yaml, or here when every
option of the group shares it (the objective's knobs, the ``_partial_`` flags).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Dict, List, Optional

from omegaconf import MISSING

from swarm.config import rules
from swarm.config.inputs import (
    ArithTaskConf,
    HFGeneratorConf,
    HFTakerConf,
    HfTaskConf,
    JsonTaskConf,
    SmolLM2GeneratorConf,
    SmolLM2TakerConf,
    ZooGeneratorConf,
    ZooTakerConf,
)
from swarm.config.scoring import HFLLMJudgeConf, JudgeConf, ModelVerifierConf, OpenAIJudgeConf, OpenAIVerifierConf, VerifierConf
from swarm.runtime.errors import ConfigError

# ---------------------------------------------------------------------------------- objective


@dataclass
class ObjectiveConf:
    """utility = sum_k weights[k] * component_k x valid fraction (objectives/metrics.py: WeightedSum).

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

    def __post_init__(self) -> None:
        from objectives.registry import COMPONENTS, check_weights  # no torch: names and rules only

        try:
            check_weights(self.weights, {*COMPONENTS, *self.components})
        except ValueError as err:
            raise ConfigError(str(err)) from None
        rules.at_least("objective.chunks", self.chunks, 1)
        rules.positive("objective.novelty_eps", self.novelty_eps)
        rules.at_least("objective.realism_top_k", self.realism_top_k, 1)
        rules.at_least("objective.novelty_items", self.novelty_items, 1)


# ---------------------------------------------------------------------------------- search


@dataclass
class MethodConf:
    """A search: ``_target_(ctx, **options) -> SearchResult``; ``name`` is what summary.json reports."""

    RUN_ONLY: ClassVar[tuple[str, ...]] = ("name",)
    _target_: str = MISSING
    _partial_: bool = True
    name: str = MISSING


@dataclass
class RandomSearchConf(MethodConf):
    noise: float = MISSING  # perturbation scale, relative to the experts' spread

    def __post_init__(self) -> None:
        rules.finite_at_least_zero("method.noise", self.noise)


@dataclass
class CmaEsConf(MethodConf):
    sigma: float = MISSING  # initial step size around the uniform mixture

    def __post_init__(self) -> None:
        rules.positive("method.sigma", self.sigma)


@dataclass
class TiesConf(MethodConf):
    combination: str = MISSING  # ties | dare_ties
    density: float = MISSING  # fraction of each expert's LoRA values kept
    weights: Optional[List[float]] = None  # one per generator expert (checked when the experts are known)

    def __post_init__(self) -> None:
        rules.one_of("method.combination", self.combination, ("ties", "dare_ties"), "one of ties, dare_ties")
        rules.in_range("method.density", self.density, 0.0, 1.0, low_open=True)


@dataclass
class PromptSearchConf(MethodConf):
    generator: str = MISSING  # best_expert | base
    examples: Optional[int] = None  # dev examples a candidate prompt draws from; null = 2 x generator.few_shot
    instructions: str = MISSING  # auto | own | evol
    evol: List[str] = MISSING

    def __post_init__(self) -> None:
        rules.one_of("method.generator", self.generator, ("best_expert", "base"), "best_expert or base")
        rules.one_of("method.instructions", self.instructions, ("auto", "own", "evol"), "auto, own or evol")
        if self.examples is not None:
            rules.at_least("method.examples", self.examples, 1)
        for t in self.evol:
            if "{n}" not in t or "{examples}" not in t:
                raise ConfigError(f"method.evol: every instruction needs {{n}} and {{examples}}, got {t!r}")


@dataclass
class AdversarialConf(MethodConf):
    pool_size: int = MISSING
    replace_fraction: float = MISSING
    feed: str = MISSING  # which generated items enter the takers' pool (swarm.search.methods.adversarial.FEEDS)

    def __post_init__(self) -> None:
        rules.at_least("method.pool_size", self.pool_size, 1)
        rules.in_range("method.replace_fraction", self.replace_fraction, 0.0, 1.0)
        rules.one_of("method.feed", self.feed, ("hardest", "random"), "hardest or random")


@dataclass
class PSOConf:
    """The rules of ``swarm.search.pso.PSO`` (which takes these as keyword arguments)."""

    inertia: float = MISSING
    cognitive: float = MISSING
    social: float = MISSING
    repel: float = MISSING
    step_length: float = MISSING
    decay: float = MISSING
    floor: float = MISSING
    patience: int = MISSING
    max_steps: int = MISSING
    restart_patience: int = MISSING  # <= 0: restarts off
    restart_cooldown: int = MISSING
    fused: Any = MISSING  # auto | true | false

    def __post_init__(self) -> None:
        rules.check_pso(**asdict(self))


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


SCHEMAS: dict[str, dict[str, type]] = {  # group -> option -> schema (ConfigStore: schema/<group>/<option>)
    "task": {"arith": ArithTaskConf, "json": JsonTaskConf, "hf": HfTaskConf},
    "generator": {"zoo": ZooGeneratorConf, "hf": HFGeneratorConf, "smollm2": SmolLM2GeneratorConf},
    "taker": {"zoo": ZooTakerConf, "hf": HFTakerConf, "smollm2": SmolLM2TakerConf},
    "judge": {"exact": JudgeConf, "hf_llm": HFLLMJudgeConf, "openai": OpenAIJudgeConf},
    "verifier": {"plain": VerifierConf, "model": ModelVerifierConf, "openai": OpenAIVerifierConf},
    "objective": {"weighted": ObjectiveConf},
    "method": {
        "plain": MethodConf, "random_search": RandomSearchConf, "cma_es": CmaEsConf, "ties": TiesConf,
        "prompt_search": PromptSearchConf, "adversarial": AdversarialConf,
    },
    "pso": {"pso": PSOConf},
    "logger": {"none": LoggerConf, "wandb": WandbConf},
}
