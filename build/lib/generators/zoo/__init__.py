"""The embedded model zoo (docs/zoo.md): a generator base with one LoRA expert per cluster of the
problem space, and independent small taker LMs of graded skill, built once per recipe and cached.

Modules: tokenizer (the character tokenizer), problems (the problem space and training lines),
recipe (what is trained, the cache key), train (the training jobs), skills (the skill matrix),
build (build, cache, load; the ``dswarm-zoo`` command).
"""
from generators.models.cache import default_cache_dir
from generators.zoo.build import Zoo, build_zoo, main
from generators.zoo.problems import (
    BINS,
    CLUSTERS,
    GENERATOR_TEMPLATE,
    HARD,
    N_NEW,
    N_SHOTS,
    TAKER_STOP,
    TAKER_TEMPLATE,
    bin_of,
    sample,
)
from generators.zoo.recipe import RECIPE_VERSION, RECIPES, recipe_key
from generators.zoo.skills import skill_table

__all__ = [
    "Zoo", "build_zoo", "main", "default_cache_dir", "skill_table", "recipe_key", "RECIPES", "RECIPE_VERSION",
    "BINS", "CLUSTERS", "HARD", "GENERATOR_TEMPLATE", "TAKER_TEMPLATE", "TAKER_STOP", "N_SHOTS", "N_NEW",
    "bin_of", "sample",
]
