"""The methods side by side: Data Swarms (data_swarms.py), Adversarial Swarms (adversarial.py), and the
eight baselines Data Swarms is compared against, on the same evaluation code.

Each baseline is ``method(ctx, **method_options) -> SearchResult`` like the swarm, so
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
| random_search | black-box search over expert mixtures | black_box.py |
| cma_es | evolutionary search (CMA-ES) over expert mixtures | black_box.py |

The list of methods is conf/method/*.yaml (``swarm.config.options("method")``); this
package imports nothing, so checking a ``_target_`` here loads no model code.
"""