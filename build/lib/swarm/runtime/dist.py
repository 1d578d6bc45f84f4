"""Processes: shard particles over Accelerate processes, gather their results.

Launched plainly, a run is one process and every call here is trivial. Under
``accelerate launch`` (or torchrun) each process evaluates a round-robin shard
of the particles and the results are gathered on every process, so all of
them take identical PSO steps; only the main process writes files and logs.

Only rank 0 has a Hydra run dir: the other ranks get `follower_overrides()`
before Hydra starts (no .hydra/, no log file, their Hydra dirs in a temp dir
removed at exit) and receive rank 0's run dir with `Dist.broadcast`, so a
``${now:}`` that differs between processes can never create a second run dir.

    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 \
        --mixed_precision no --dynamo_backend no -m swarm.cli [overrides]

works on GPUs (NCCL, one GPU per process) and on CPU (gloo: `Dist` asks for
``PartialState(cpu=True)`` when the run's device is CPU). Note that
``accelerate launch --cpu --num_processes 2`` starts a single process.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Any, TypeVar

T = TypeVar("T")


def launched_rank() -> int:
    """This process's global rank as the launcher set it (0 when not launched); readable before any init."""
    return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0


def follower_overrides() -> list[str]:
    """Hydra overrides for a non-main process: nothing written under the user's outputs, no log file.

    Its Hydra run/sweep dirs point into a private temp dir (deleted at exit);
    the run itself uses rank 0's run dir, broadcast in ``swarm.run.run``.
    """
    if launched_rank() == 0:
        return []
    scratch = tempfile.mkdtemp(prefix=f"dswarm-rank{launched_rank()}-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    return [
        f"hydra.run.dir={scratch}",
        f"hydra.sweep.dir={scratch}",
        "hydra.sweep.subdir=job${hydra.job.num}",
        "hydra.output_subdir=null",
        "hydra/job_logging=none",
        "hydra/hydra_logging=none",
    ]


def shutdown() -> None:
    """Tear the process group down at the end of the process (not per run: multirun reuses it)."""
    import torch.distributed as td

    if td.is_available() and td.is_initialized():
        td.destroy_process_group()


class Dist:
    """Rank, world size and the two collectives the run needs."""

    def __init__(self, cpu: bool) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.state = None
        if self.world > 1:
            from accelerate import PartialState

            self.state = PartialState(cpu=cpu)
            if self.state.num_processes != self.world:
                raise RuntimeError(f"WORLD_SIZE={self.world} but Accelerate set up {self.state.num_processes} process(es)")
        self.rank = self.state.process_index if self.state else 0
        self.is_main = self.rank == 0

    @property
    def device(self) -> str | None:
        """The device Accelerate assigned to this process (None when not launched)."""
        return str(self.state.device) if self.state else None

    def shard(self, n: int) -> list[int]:
        """This process's share of ``n`` work items, round-robin."""
        return list(range(self.rank, n, self.world))

    def gather(self, mine: dict[int, T], n: int) -> list[T]:
        """Every process's ``{index: result}`` merged into one list ordered by index (on every process)."""
        if self.world == 1:
            return [mine[i] for i in range(n)]
        from accelerate.utils import gather_object

        merged: dict[int, T] = {}
        for part in gather_object([mine]):
            merged.update(part)
        missing = [i for i in range(n) if i not in merged]
        if missing:
            raise RuntimeError(f"gather: no process returned results for {missing}")
        return [merged[i] for i in range(n)]

    def broadcast(self, obj: Any) -> Any:
        """The main process's ``obj`` on every process (e.g. the run dir)."""
        if self.world == 1:
            return obj
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([obj])[0]
