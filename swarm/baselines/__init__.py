"""The eight baselines Data Swarms is compared against, on the same evaluation code.

Each is ``method(ctx, **method_options) -> SearchResult`` like the swarm, so
the export, the held-out evaluation and summary.json are shared; the ones
that search get the swarm's evaluation budget (as many candidates a step as
there are generator experts, ``pso.max_steps`` steps, starting from the
experts). By family:

| method | family | module |
| --- | --- | --- |
| base_model | prompting the base LM (Self-Instruct) | fixed.py |
| prompt_search | prompt optimization (APE / Evol-Instruct) | prompt_search.py |
| best_expert | model selection | fixed.py |
| data_merge | data mixing: one expert on all the experts' data | data_merge.py |
| uniform_soup | weight averaging (model soups) | fixed.py |
| ties | model merging (TIES / DARE-TIES) | merges.py |
| random_search | black-box search over expert mixtures | search.py |
| cma_es | evolutionary search (CMA-ES) over expert mixtures | search.py |
"""
from __future__ import annotations

from typing import Callable

from swarm.baselines.data_merge import data_merge
from swarm.baselines.fixed import base_model, best_expert, uniform_soup
from swarm.baselines.merges import ties
from swarm.baselines.prompt_search import prompt_search
from swarm.baselines.search import cma_es, random_search

METHODS: dict[str, Callable[..., object]] = {
    "base_model": base_model,
    "prompt_search": prompt_search,
    "best_expert": best_expert,
    "data_merge": data_merge,
    "uniform_soup": uniform_soup,
    "ties": ties,
    "random_search": random_search,
    "cma_es": cma_es,
}
