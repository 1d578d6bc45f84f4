"""One base LM in memory, one LoRA structure, particles copied in place.

`LoraModel` loads a causal LM once, wraps it once with PEFT using the first
adapter's `LoraConfig`, and reads every adapter directory (safetensors only)
into a row of `expert_vectors`. A swarm particle is a flat fp32 vector in the
layout of `spec` (generators/models/particles.py); `load(vec)` copies it into the live
LoRA tensors without reloading or re-wrapping anything, and `generate` runs
left-padded batched decoding with whatever particle is loaded;
`generate_each(vectors, prompts)` runs every row of `vectors` on the prompts
in the same batches, each row its own adapter (generators/models/multi_lora.py).
The zero vector is the base model exactly (every LoRA B is zero).

Usage:
    lm = LoraModel(zoo.base_dir, list(zoo.generators.values()))
    lm.load(lm.expert_vectors[2])
    texts = lm.generate(prompts, max_new_tokens=64, temperature=1.0, seed=3)
    every = lm.generate_each(pso.x, prompts, max_new_tokens=64, temperature=1.0, seed=3)  # [P][n]
    takers = LoraModel(zoo.base_dir, list(zoo.takers.values()), share=lm)  # same base weights
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.utils.save_and_load import get_peft_model_state_dict
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from generators.models.adapter_files import WEIGHTS_FILE, config_diff, read_adapter
from generators.models.decoding import Decoding, length_chunks, row_seed
from generators.models.encoding import Encoder
from generators.models.multi_lora import MultiLora
from generators.models.particles import FlatSpec, check_vector, flatten, share_flat, spec_of, unflatten

__all__ = ["LoraModel"]

class LoraModel:
    """A base causal LM plus one live LoRA structure shared by every particle.

    With no adapter dirs it is the plain base model (e.g. an LLM judge):
    `generate` works, `expert_vectors` is empty and `load`/`export` raise.
    With `share=` another LoraModel on the same base dir, the base weights are
    not loaded again: this model's LoRA structure becomes a second PEFT
    adapter of the same wrapped model (takers and generators of one base);
    without adapters it is that model's base alone (an LLM judge on the
    generators' base): `generate` runs with every adapter switched off."""

    def __init__(
        self,
        base_dir: str | Path,
        adapter_dirs: Sequence[str | Path],
        *,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
        chat_template: bool = False,
        share: LoraModel | None = None,
        multi_lora: bool = True,
    ) -> None:
        base_dir = Path(base_dir)
        if not base_dir.is_dir():
            raise FileNotFoundError(f"base model dir not found: {base_dir}")
        configs, vectors, self.names = [], [], []
        self.spec: FlatSpec | None = None
        for d in map(Path, adapter_dirs):
            config, tensors = read_adapter(d)
            if config.get("peft_type", "LORA") != "LORA":
                raise ValueError(f"adapter {d}: peft_type {config.get('peft_type')!r} is not LORA")
            if configs and (diff := config_diff(configs[0], config)):
                raise ValueError(f"adapter {d} does not match {adapter_dirs[0]}: {diff}")
            spec = spec_of(tensors)
            if self.spec is not None and (spec.names, spec.shapes) != (self.spec.names, self.spec.shapes):
                bad = sorted(set(spec.names) ^ set(self.spec.names)) or [
                    n for n, a, b in zip(spec.names, spec.shapes, self.spec.shapes) if a != b
                ]
                raise ValueError(f"adapter {d} does not match {adapter_dirs[0]}: tensor keys/shapes differ at {bad[:3]}")
            self.spec = self.spec or spec
            configs.append(config)
            vectors.append(flatten(tensors, self.spec))
            self.names.append(d.name)

        self.base_dir = base_dir.resolve()
        self.adapter_dirs = [Path(d) for d in adapter_dirs]  # where each expert came from (a merge reads them again)
        self._multi: MultiLora | None = None
        self.multi_lora = False
        if share is not None:
            if share.spec is None or share.base_dir != self.base_dir:
                raise ValueError(f"LoraModel(share=): the shared model needs adapters on the same base dir ({share.base_dir} vs {self.base_dir})")
            self.device, self.tokenizer = share.device, share.tokenizer
        else:
            self.device = torch.device(device)
            self.tokenizer = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True, trust_remote_code=False)
            self.tokenizer.padding_side = "left"
            if self.tokenizer.pad_token is None:
                self.tokenizer.pad_token = self.tokenizer.eos_token
            base = AutoModelForCausalLM.from_pretrained(
                str(base_dir), local_files_only=True, use_safetensors=True, trust_remote_code=False, dtype=dtype
            )
        self.chat_template = chat_template  # also makes the prompt-id encoder, shared with models of the same tokenizer
        if self.spec is None:  # no adapters: the plain base model (with share=, the shared one's adapters off)
            self.config, self._flat, self.adapter = None, None, None
            self.model = share.model if share is not None else base.to(self.device).eval()
            self.expert_vectors = torch.zeros(0, 0, device=self.device)
            return
        self.config = LoraConfig.from_pretrained(str(adapter_dirs[0]))
        self.config.inference_mode = True
        self.config.base_model_name_or_path = str(base_dir)  # the base actually used (exports record it)
        if share is None:
            self.adapter = "default"
            self.model = get_peft_model(base, self.config).to(self.device).eval()
        else:
            self.adapter, self.model = f"lora{len(share.model.peft_config)}", share.model
            self.model.add_adapter(self.adapter, self.config)
            self.model.to(self.device).eval()
        # PEFT's own file-key view of the live tensors; values share storage with the parameters.
        live = get_peft_model_state_dict(self.model, adapter_name=self.adapter)
        params = {p.data_ptr(): p for p in self.model.parameters()}
        if any(t.data_ptr() not in params for t in live.values()):
            raise RuntimeError("PEFT state dict does not alias the live LoRA parameters; in-place load impossible")
        if set(live) != set(self.spec.names):
            diff = sorted(set(live) ^ set(self.spec.names))
            raise ValueError(f"adapter {adapter_dirs[0]} keys do not match the LoRA structure of {base_dir}: {diff[:3]}")
        self._flat = share_flat({k: params[t.data_ptr()] for k, t in live.items()}, self.spec)
        if multi_lora:
            keys = {params[t.data_ptr()].data_ptr(): k for k, t in live.items()}  # re-seated: new pointers
            self._multi = MultiLora.build(self.model, self.adapter, self.spec, keys)
        # Whether `generate_each` runs every adapter in one batch (else one adapter at a time).
        self.multi_lora = self._multi is not None
        self.expert_vectors = torch.stack(vectors).to(self.device)
        self.load(torch.zeros(self.spec.numel))

    @property
    def chat_template(self) -> bool:
        """Whether prompts go through the tokenizer's chat template (as a user message) before tokenizing."""
        return self._encoder.chat_template

    @chat_template.setter
    def chat_template(self, on: bool) -> None:
        """A new encoder: remembered prompt ids are only valid for the template (and tokenizer) they were made with."""
        self._encoder = Encoder(self.tokenizer, on)

    @property
    def dim(self) -> int:
        """Length of a particle vector (0 without adapters)."""
        return 0 if self.spec is None else self.spec.numel

    def _need_lora(self, what: str) -> FlatSpec:
        if self.spec is None:
            raise ValueError(f"LoraModel.{what}: this model was built without adapter dirs, so it has no LoRA structure")
        return self.spec

    def load(self, vec: torch.Tensor) -> None:
        """Make `vec` the active adapter: one in-place copy into the buffer the live LoRA tensors view."""
        check_vector(vec, self._need_lora("load"), "LoraModel.load")
        with torch.no_grad():
            self._flat.copy_(vec)

    def export(self, vec: torch.Tensor, out_dir: str | Path) -> None:
        """Write `vec` as a PEFT adapter dir loadable by `PeftModel.from_pretrained`."""
        spec = self._need_lora("export")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        tensors = unflatten(vec.detach().to("cpu", torch.float32).contiguous(), spec)
        save_file({k: v.clone() for k, v in tensors.items()}, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
        self.config.save_pretrained(str(out))

    def _encode(self, prompts: Sequence[str]) -> list[list[int]]:
        return self._encoder(prompts)

    def _prepare(self, prompts: Sequence[str], batch_size: int, max_new_tokens: int,
                 max_batch_tokens: int | None = None) -> tuple[list[list[int]], list[list[int]]]:
        """Token ids and length-sorted chunks (rows x tokens within the budget); this model's adapter made active."""
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError(f"batch_size and max_new_tokens must be >= 1, got {batch_size}, {max_new_tokens}")
        if self.adapter is not None and self.model.active_adapter != self.adapter:
            self.model.set_adapter(self.adapter)  # a shared base: the other model's adapter was active
        ids = self._encode(prompts)
        return ids, length_chunks(ids, batch_size, max_batch_tokens, max_new_tokens)

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        batch_size: int = 32,
        seed: int = 0,
        stop: str | None = None,
        progress: Callable[[int], None] | None = None,
        max_batch_tokens: int | None = None,
    ) -> list[str]:
        """Continuations of `prompts` with the loaded adapter (prompt stripped), cut at `stop` when given.

        Prompts are sorted by length into left-padded batches of at most `batch_size` rows and
        `max_batch_tokens` rows x (prompt + new tokens), the memory budget of a forward pass. Greedy when
        temperature is 0; otherwise prompt i samples from its own generator
        seeded by (seed, i), so the result is a function of (prompts, seed)
        alone and the global RNG is untouched. `progress(n)` is called as
        each batch of n prompts finishes.
        """
        if not prompts:
            return []
        ids, chunks = self._prepare(prompts, batch_size, max_new_tokens, max_batch_tokens)
        decoding = Decoding(max_new_tokens, temperature, top_p, stop)
        out: list[str] = [""] * len(ids)
        with self.model.disable_adapter() if self.spec is None and isinstance(self.model, PeftModel) else contextlib.nullcontext():
            for rows in chunks:
                texts = decoding.run(self.model, self.tokenizer, [ids[i] for i in rows], [row_seed(seed, i) for i in rows], self.device)
                for i, text in zip(rows, texts):
                    out[i] = text
                if progress:
                    progress(len(rows))
        return out

    def generate_each(
        self,
        vectors: torch.Tensor,
        prompts: Sequence[str],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        batch_size: int = 32,
        seed: int = 0,
        stop: str | None = None,
        max_batch_tokens: int = 1 << 16,
        progress: Callable[[int], None] | None = None,
    ) -> list[list[str]]:
        """`generate(prompts)` for every row of `vectors` [G, d]: out[g][i] is adapter g's text for prompt i.

        With multi-LoRA, each batch holds one length-sorted chunk of prompts
        for as many adapters as fit in `max_batch_tokens` (rows x (prompt +
        new tokens), the KV-cache budget), adapter-major, and every adapter
        is applied to its own rows in the same forward pass. The texts equal
        those of loading each vector and calling `generate` (same chunks,
        same per-prompt seeds). Without it, that is what runs.
        """
        spec = self._need_lora("generate_each")
        if vectors.dim() != 2 or vectors.shape[1] != spec.numel:
            raise ValueError(f"LoraModel.generate_each: expected [G, {spec.numel}] vectors, got shape {list(vectors.shape)}")
        kw = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, batch_size=batch_size, seed=seed, stop=stop,
                  max_batch_tokens=max_batch_tokens)
        if not (self.multi_lora and self._multi) or not prompts:
            out = []
            for vec in vectors:
                self.load(vec)
                out.append(self.generate(prompts, progress=progress, **kw))
            return out
        ids, chunks = self._prepare(prompts, batch_size, max_new_tokens, max_batch_tokens)
        bank = vectors.detach().to(device=self.device, dtype=self._flat.dtype)  # no copy when they already match
        decoding = Decoding(max_new_tokens, temperature, top_p, stop)
        out = [[""] * len(ids) for _ in range(len(bank))]
        for rows in chunks:
            tokens = len(rows) * (max(len(ids[i]) for i in rows) + max_new_tokens)
            per_batch = max(1, max_batch_tokens // tokens)
            for g0 in range(0, len(bank), per_batch):
                group = bank[g0 : g0 + per_batch]
                with self._multi.active(group):
                    texts = decoding.run(
                        self.model, self.tokenizer, [ids[i] for i in rows] * len(group),
                        [row_seed(seed, i) for i in rows] * len(group), self.device,
                        groups=len(group), keep_groups=self._multi.keep,
                    )
                for g in range(len(group)):
                    for i, text in zip(rows, texts[g * len(rows) : (g + 1) * len(rows)]):
                        out[g0 + g][i] = text
                if progress:
                    progress(len(rows) * len(group))
        return out
