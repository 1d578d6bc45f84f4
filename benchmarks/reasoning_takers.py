"""Usage: python benchmarks/reasoning_takers.py [--task ../shared/data/gsm8k.json] [--n 100] [--max-new-tokens 256]

Accuracy of one taker (the SmolLM2 base model, no adapter) in both answer modes on
a seeded subsample of a task's test split: ``line`` (one line, stop at newline) and
``reasoning`` (free text, the answer extracted by the task's rule), scored by the
``reference`` judge. The prompts and budgets are `taker=smollm2`'s (the composed run config);
a null line budget is sized from the task as a run sizes it (swarm.build.answer_settings).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generators.models.lora_model import LoraModel  # noqa: E402
from generators.sources import smollm2  # noqa: E402
from objectives.judging.answers import make_extractor  # noqa: E402
from objectives.judging.judges import ReferenceJudge  # noqa: E402
from objectives.tasks.json_task import load_json_task  # noqa: E402
from swarm.build import answer_settings  # noqa: E402
from swarm.config import compose  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default=str(REPO.parent / "shared" / "data" / "gsm8k.json"))
    parser.add_argument("--n", type=int, default=100, help="seeded subsample of the test split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="reasoning budget (default: the config's)")
    parser.add_argument("--chat-template", action="store_true")
    parser.add_argument("--batch-size", type=int, default=25)
    args = parser.parse_args()
    cfg = compose(["taker=smollm2"]).taker
    task = load_json_task(args.task, max_dev=50, max_test=args.n, seed=args.seed)
    model = LoraModel(smollm2.base_dir(), [], chat_template=args.chat_template)
    line = answer_settings(cfg, task, smollm2.base_dir())  # the line budget as a run sizes it
    extract = make_extractor(task.answer_extract, [it.output for it in task.dev])
    judge = ReferenceJudge()
    inputs = [it.input for it in task.test]
    modes = {
        "line": (line.template, line.max_new_tokens, line.stop, None),
        "reasoning": (cfg.reasoning_template, args.max_new_tokens or cfg.reasoning_max_new_tokens, None, extract),
    }
    print(f"task {task.name}: {len(inputs)} test items (seed {args.seed}), SmolLM2-135M-Instruct base, "
          f"chat_template={args.chat_template}, greedy")
    for mode, (template, max_new, stop, extractor) in modes.items():
        start = time.perf_counter()
        texts = model.generate([template.format(input=x) for x in inputs], max_new_tokens=max_new,
                               batch_size=args.batch_size, stop=stop)
        answers = texts if extractor is None else [extractor(t) for t in texts]
        scores = judge.score(task.test, answers)
        accuracy = sum(s or 0.0 for s in scores) / len(scores)
        print(f"{mode:9s} accuracy {accuracy:.3f} ({int(sum(s or 0 for s in scores))}/{len(scores)})  "
              f"max_new_tokens {max_new}  {time.perf_counter() - start:.0f}s  e.g. {texts[0][-120:]!r} -> {answers[0]!r}",
              flush=True)


if __name__ == "__main__":
    main()
