"""The embedded model zoo (docs/zoo.md): a generator base with one LoRA expert per cluster of the arith task's
dev items, and independent small taker LMs of graded skill, built once per recipe and cached.

Modules: tokenizer (the character tokenizer), problems (problem forms and training lines), recipe (what is
trained, the dev clusters, the cache key), train (the training jobs), skills (the skill matrix), build (build,
cache, load; the ``dswarm-zoo`` command).
"""
from generators.models.cache import default_cache_dir
from generators.zoo.build import Zoo, build_zoo, main, union_expert_job, weights_digest
from generators.zoo.problems import (
    DEV_FORMS,
    FORMS,
    GENERATOR_TEMPLATE,
    N_NEW,
    N_SHOTS,
    TAKER_STOP,
    TAKER_TEMPLATE,
    form_of,
    sample,
)
from generators.zoo.recipe import RECIPE_VERSION, RECIPES, recipe_key
from generators.zoo.skills import skill_table

__all__ = [
    "Zoo", "build_zoo", "main", "union_expert_job", "weights_digest", "default_cache_dir", "skill_table", "recipe_key", "RECIPES",
    "RECIPE_VERSION", "FORMS", "DEV_FORMS", "GENERATOR_TEMPLATE", "TAKER_TEMPLATE", "TAKER_STOP", "N_SHOTS", "N_NEW",
    "form_of", "sample",
]
