"""The training loop: one class that the command line and the application share.

It reports through a plain callback with the events of ``train_events`` and never
raises for problems a user can cause (a NaN loss, a batch that does not fit in GPU
memory, a dataset that does not fit the Input block): those end the run with a
FailedEvent whose reason says what to do. Stop and pause are cooperative: they take
effect between steps, so the weights are always those of a whole step.
"""

from __future__ import annotations

import contextlib
import csv
import math
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from . import distributed
from .analysis import analyze
from .checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_matching,
    save_checkpoint,
    weights_mismatch,
)
from .compile import compile_graph
from .data import Augment, Batches, Dataset, DatasetError, ImageSet, load_dataset
from .device import DeviceError, describe_device, free_memory, resolve_device
from .errors import GraphError
from .graph import Graph
from .probe import kernels, probe
from .tasks import MISTAKES_SHOWN, Evaluation, Task, task_for
from .train_config import ConfigError, TrainConfig
from .train_events import (
    DoneEvent,
    EpochEvent,
    Event,
    FailedEvent,
    FeatureMapEvent,
    ReadyEvent,
    StepEvent,
)

Callback = Callable[[Event], None]
_ERROR_KINDS = ((GraphError, "graph"), (DatasetError, "data"), (DeviceError, "device"),
                (ConfigError, "config"), (CheckpointError, "io"))
_USER_ERRORS = tuple(t for t, _ in _ERROR_KINDS)
PROBE_IMAGES = 8
__all__ = ["MISTAKES_SHOWN", "PROBE_IMAGES", "Trainer", "TrainingFailed", "check_fit",
           "divergence_limit", "preprocess", "write_metrics_csv"]


class TrainingFailed(Exception):
    def __init__(self, kind: str, reason: str, **suggestion: Any):
        super().__init__(reason)
        self.kind, self.reason, self.suggestion = kind, reason, suggestion


class Trainer:
    """Train a graph on a dataset; ``run()`` returns the final DoneEvent or FailedEvent.

    Fine-tuning (SPEC §8): ``config.init`` names a checkpoint whose weights the nodes of
    the same id and shapes start from (the ReadyEvent lists loaded and fresh nodes);
    frozen nodes come out of ``compile_graph`` untrainable and are left out of the
    optimizer. A resumed run has weights of its own, so ``init`` is ignored then.

    In a process group (SPEC §10, engine.distributed) each process trains its share of
    every global batch through DistributedDataParallel; rank 0 alone reports through
    ``callback``, probes and writes files, with the metrics of the whole batch.
    """

    def __init__(self, graph: Graph, config: TrainConfig | None = None, *,
                 callback: Callback | None = None, out_dir: str | Path | None = None,
                 resume: str | Path | None = None, dataset: Dataset | None = None,
                 probe_nodes: Iterable[str] = (), report_interval: float = 0.1) -> None:
        self.graph = graph
        self.config = config or TrainConfig.from_dict(graph.training)
        self.callback = callback or (lambda event: None)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.resume_path = resume
        self.dataset = dataset
        self.report_interval = report_interval
        self.model: fx.GraphModule | None = None
        self.device: torch.device | None = None
        self.metrics: list[dict[str, Any]] = []
        self._probe_nodes: tuple[str, ...] = tuple(probe_nodes)
        self.probe_index = 0
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._checkpoint: Path | None = None
        self._last_probe = -math.inf  # the first step is probed: maps from the start
        self._probed_step = -1

    # ---- control from other threads ------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def set_probe_nodes(self, nodes: Iterable[str]) -> None:
        self._probe_nodes = tuple(nodes)  # one assignment: safe to call from the GUI thread

    def set_probe_index(self, index: int) -> None:
        """Which of the PROBE_IMAGES validation images the feature maps are shown for."""
        self.probe_index = max(0, int(index))

    # ---- the run ---------------------------------------------------------------------

    def run(self) -> DoneEvent | FailedEvent:
        try:
            self._prepare()
            self.callback(self._ready())
            event: DoneEvent | FailedEvent = self._train()
        except TrainingFailed as exc:
            event = FailedEvent(exc.kind, exc.reason, self._checkpoint, exc.suggestion)
        except _USER_ERRORS as exc:
            kind = next(k for t, k in _ERROR_KINDS if isinstance(exc, t))
            event = FailedEvent(kind, str(exc), self._checkpoint)
        except Exception as exc:  # a bug: report it instead of killing the GUI's worker
            event = FailedEvent("error", f"unexpected {type(exc).__name__}: {exc}",
                                self._checkpoint, details=traceback.format_exc())
        self.callback(event)
        return event

    def _prepare(self) -> None:
        cfg = self.config
        cfg.validate()
        self.world = world = distributed.current()
        if not world.main:
            self.callback = lambda event: None  # rank 0 alone reports
            self.out_dir = None
        report = analyze(self.graph)
        if not report.ok:
            raise GraphError(report.errors)
        self.report = report
        # Read the starting weights before the data, so a bad file fails at once; a
        # resumed run has its own weights (SPEC §8).
        init = load_checkpoint(cfg.init) if cfg.init and self.resume_path is None else None
        self.device = resolve_device(cfg.device)
        if world.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", world.local_rank)  # one GPU per process
        if cfg.sync_bn and world.distributed and self.device.type != "cuda":
            raise ConfigError("sync_bn needs CUDA (one GPU per process): set it to false "
                              "to train on CPU processes")
        if self.dataset is None:
            inputs = [report.nodes[i].output_shape for i in report.input_ids]
            self.dataset = load_dataset(cfg.dataset, val_fraction=cfg.val_fraction,
                                        seed=cfg.seed, classes=cfg.classes, limit=cfg.limit,
                                        image_shape=inputs[0] if inputs else None,
                                        options=cfg.dataset_options)
        # The Output's task decides the loss, the targets and the metrics from here on.
        self.task: Task = task_for(report, self.dataset.classes)
        check_fit(self.graph, report, self.dataset, self.task)
        torch.manual_seed(cfg.seed)
        model = compile_graph(self.graph, report)
        if cfg.sync_bn and world.distributed:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.init_loaded, self.init_fresh = (load_matching(model, init, cfg.init)
                                             if init is not None else ([], []))
        self.model = model.to(self.device)
        self.amp_dtype = _amp_dtype(cfg.precision, self.device)
        # NHWC unless the design's settings say otherwise: faster on CUDA, and on a CPU
        # with torch 2.13 for all but one template (U-Net 1.22×, X-vs-O 1.5×, ResNet-18
        # 0.94×; benchmarks/train_throughput.py --channels-last compares)
        self.channels_last = (cfg.channels_last if cfg.channels_last is not None
                              else self.device.type in ("cuda", "cpu"))
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = _optimizer(self.model, cfg)
        ds = self.dataset
        self.train_batches = Batches(
            ds.train, cfg.batch_size, mean=ds.mean, std=ds.std, device=self.device,
            shuffle=True, seed=cfg.seed, channels_last=self.channels_last,
            augment=Augment(crop_padding=cfg.crop_padding, hflip=cfg.hflip),
            rank=world.rank, world_size=world.size)
        # Validation is sharded: each process takes a contiguous share, the sums meet
        # in evaluate (the same metrics as one process, in a fraction of the time).
        lo, hi = (len(ds.val) * r // world.size for r in (world.rank, world.rank + 1))
        self.val_source = ImageSet(ds.val.x[lo:hi], ds.val.y[lo:hi]) \
            if world.distributed else ds.val
        self.val_batches = Batches(self.val_source, 2 * cfg.batch_size, mean=ds.mean,
                                   std=ds.std, device=self.device,
                                   channels_last=self.channels_last) if len(ds.val) else None
        self.scheduler, self.schedule_per_step = _scheduler(self.optimizer, cfg,
                                                            len(self.train_batches))
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.start_epoch = 1
        if self.resume_path is not None:
            self._resume_from(self.resume_path)
        self.runner: nn.Module = self.model
        self.criterion = self.task.criterion(cfg)
        if world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            # Each process's loss is its share's SUM over the global batch's count
            # times the world size: DDP's mean of the gradients is then the gradient
            # of the one-process mean, even for an uneven last batch.
            self.criterion.reduction = "sum"
            # (gradients as views of DDP's buckets: one copy less each step)
            self.runner = DistributedDataParallel(
                self.model, device_ids=[world.local_rank] if self.device.type == "cuda"
                else None, gradient_as_bucket_view=True)
        if cfg.compile:
            self.runner = torch.compile(self.runner)
        probe_source = ds.val if len(ds.val) else ds.train
        self.probe_raw = probe_source.x[:PROBE_IMAGES]
        self.probe_targets = self.task.probe_targets(probe_source.y[:PROBE_IMAGES])
        self.probe_x = self.train_batches.normalize(self.probe_raw.to(self.device))
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)

    def _ready(self) -> ReadyEvent:
        ds = self.dataset
        precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]
        return ReadyEvent(ds.name, list(ds.classes), len(ds.train), len(ds.val),
                          tuple(ds.image_shape), len(self.train_batches), self.config.epochs,
                          self.start_epoch, describe_device(self.device), precision,
                          self.probe_raw.numpy().copy(), self.task.name,
                          self.probe_targets, list(self.init_loaded), list(self.init_fresh))

    def _resume_from(self, path: str | Path) -> None:
        data = load_checkpoint(path)
        problem = weights_mismatch(self.model, data["state_dict"])
        if problem:
            raise CheckpointError(f"{path} does not fit this graph (it was saved from a "
                                  f"different design): {problem}")
        self.model.load_state_dict(data["state_dict"])
        if data.get("optimizer_name") == self.config.optimizer and "optimizer" in data:
            with contextlib.suppress(ValueError, KeyError):
                self.optimizer.load_state_dict(data["optimizer"])
        if self.scheduler is not None and "scheduler" in data:
            with contextlib.suppress(ValueError, KeyError):
                self.scheduler.load_state_dict(data["scheduler"])
        self.metrics = list(data.get("metrics", []))
        self.start_epoch = int(data.get("epoch", 0)) + 1
        self._checkpoint = Path(path)

    def _train(self) -> DoneEvent | FailedEvent:
        cfg, model = self.config, self.model
        steps_per_epoch = len(self.train_batches)
        total_steps = steps_per_epoch * cfg.epochs
        global_step = steps_per_epoch * (self.start_epoch - 1)
        last_good = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        started = time.perf_counter()
        epochs_done = self.start_epoch - 1
        first_loss: float | None = None
        for epoch in range(self.start_epoch, cfg.epochs + 1):
            epoch_start = time.perf_counter()
            model.train()
            # loss·images, right and counted (images, or labelled pixels) since last report
            sums = torch.zeros(3, device=self.device)
            seen = 0
            epoch_sums = torch.zeros(3, device=self.device)
            epoch_seen = 0
            window_start = time.perf_counter()
            for step, (x, y) in enumerate(self.train_batches, 1):
                go = self._wait_if_paused()
                share = None
                if self.world.distributed:  # every rank stops at the same step
                    go, share = self._agree(go, y)
                if not go:
                    return self._finish_stopped(epochs_done, last_good)
                try:
                    loss, hits = (self._step(x, y) if share is None
                                  else self._step(x, y, share))
                except torch.cuda.OutOfMemoryError:
                    raise self._oom() from None
                global_step += 1
                if first_loss is None:
                    # The baseline is the very first step's loss (one sync, once): a
                    # report window's mean could already contain the explosion.
                    first_loss = float(loss.detach().float())
                added = torch.cat(((loss.detach().float() * len(y)).view(1), hits.float()))
                sums += added
                seen += len(y)
                # per step, not per report window: the epoch's figures must not depend
                # on when the windows closed (a distributed run's ranks must agree)
                epoch_sums += added
                epoch_seen += len(y)
                if self.schedule_per_step:
                    self.scheduler.step()
                now = time.perf_counter()
                if now - window_start >= self.report_interval or step == steps_per_epoch:
                    loss_sum, right, counted = sums.tolist()
                    loss_mean = loss_sum / seen
                    if not math.isfinite(loss_mean) or loss_mean > divergence_limit(first_loss,
                                                                                    self):
                        return self._diverged(epoch, step, model, last_good, loss_mean,
                                              first_loss)
                    self.callback(StepEvent(
                        epoch, step, steps_per_epoch, global_step, total_steps, loss_mean,
                        right / max(counted, 1), self.optimizer.param_groups[0]["lr"],
                        seen / max(now - window_start, 1e-9), now - started))
                    sums.zero_()
                    seen = 0
                    window_start = time.perf_counter()
                if self.world.main and (
                        (cfg.probe_every and global_step % cfg.probe_every == 0) or (
                        cfg.probe_seconds and now - self._last_probe >= cfg.probe_seconds)):
                    self._probe(global_step)
            if self.scheduler is not None and not self.schedule_per_step:
                self.scheduler.step()
            event = self._end_of_epoch(epoch, epoch_sums, epoch_seen,
                                       time.perf_counter() - epoch_start)
            epochs_done = epoch
            self.callback(event)
            if self.world.main and (cfg.probe_every or cfg.probe_seconds) \
                    and self._probed_step != global_step:
                self._probe(global_step)  # the epoch's last weights, unless already shown
            self._save(epoch)
        return DoneEvent(False, epochs_done, self._checkpoint, list(self.metrics))

    def _counted(self, y: torch.Tensor) -> torch.Tensor:
        """What the loss averages over in ``y``: images, or labelled pixels."""
        if self.task.ignore is not None:
            return (y != self.task.ignore).sum()
        return torch.tensor(len(y), device=y.device)

    def _agree(self, go: bool, y: torch.Tensor
               ) -> tuple[bool, tuple[torch.Tensor, torch.Tensor]]:
        """One small collective before each distributed step: whether any rank was
        asked to stop (so all stop at the same step instead of one waiting for the
        others in a collective) and what the global batch counts, which weighs each
        share's summed loss. Returns go and ``(weight, counted)`` for :meth:`_step`:
        the summed loss's factor (world size / global count) and this share's count."""
        counted = self._counted(y)
        flags = torch.stack((counted.to(torch.float64),
                             torch.tensor(0.0 if go else 1.0, dtype=torch.float64,
                                          device=y.device)))
        total, stops = distributed.all_sum(flags).tolist()
        weight = torch.tensor(self.world.size / max(total, 1.0), device=y.device)
        return stops == 0, (weight, counted)

    def _step(self, x: torch.Tensor, y: torch.Tensor,
              share: tuple[torch.Tensor, torch.Tensor] | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step: the loss and the task's [right, counted] (no sync).
        ``share`` (distributed): :meth:`_agree`'s weight and count of this batch."""
        weight, counted = share if share is not None else (None, None)
        with torch.autocast(self.device.type, dtype=self.amp_dtype,
                            enabled=self.amp_dtype is not None):
            out = self.runner(x)
            summed = self.criterion(out, y)
            loss = summed if weight is None else summed * weight
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        if counted is not None:  # this share's mean loss, for the reports
            loss = summed / counted.clamp(min=1)
        return loss, self.task.hits(out, y)

    def _wait_if_paused(self) -> bool:
        """False when the run should stop."""
        while not self._running.wait(0.1):
            pass
        return not self._stop.is_set()

    def _end_of_epoch(self, epoch: int, sums: torch.Tensor, n: int,
                      seconds: float) -> EpochEvent:
        if self.world.distributed:  # the whole global batches' figures, as on one process
            total = distributed.all_sum(torch.cat((sums.double(), sums.new_tensor([n]).double())))
            sums, n = total[:3], int(total[3])
        loss_sum, right, counted = sums.tolist()
        train_accuracy = right / max(counted, 1)
        val = None
        if self.val_batches is not None:
            val = self.evaluate(self.val_batches, self.val_source, reduce=True)
        event = EpochEvent(epoch, self.config.epochs, loss_sum / n, train_accuracy,
                           None if val is None else val.loss,
                           None if val is None else val.accuracy,
                           None if val is None else val.confusion, seconds,
                           self.optimizer.param_groups[0]["lr"],
                           **({} if val is None else val.extras), task=self.task.name,
                           metrics=self.task.epoch_metrics(train_accuracy, val))
        self.metrics.append(event.row())
        return event

    @torch.no_grad()
    def evaluate(self, batches: Batches, source: ImageSet | None = None, *,
                 reduce: bool = False) -> Evaluation:
        """Loss, accuracy, confusion matrix (rows: true class) and the task's metrics
        over ``batches``, accumulated on the device (the task's accumulator).

        With ``source`` (the ImageSet the unshuffled ``batches`` were made from), a
        classifier's evaluation also holds EpochEvent's ``wrong_*`` fields: the
        MISTAKES_SHOWN most confident wrong predictions, the ones most worth a look; a
        segmentation's holds the ``worst_*`` fields, the images of lowest IoU (detection:
        of most missed and false boxes).

        ``reduce``: ``batches`` is this process's share of a sharded set; the loss and
        confusion sums of every process are added up (the extras stay this share's).
        """
        self.model.eval()
        accumulator = self.task.accumulator(self.dataset.num_classes, self.device)
        # Not through DDP, whose forward may broadcast buffers: a collective that ranks
        # with different numbers of validation batches would not all make.
        net = self.model if self.world.distributed else self.runner
        for x, y in batches:
            with torch.autocast(self.device.type, dtype=self.amp_dtype,
                                enabled=self.amp_dtype is not None):
                out = net(x)
            accumulator.add(out, y)
        if reduce and self.world.distributed:
            accumulator.reduce()
        self.model.train()
        return accumulator.finish(source)

    def _probe(self, global_step: int) -> None:
        """One probe image through the network: a single-image forward, a small
        fraction of a training step, so probing twice a second costs next to nothing.
        The same forward gives the requested feature maps and, for a task with live
        predictions (segmentation), the PredictionEvent."""
        self._last_probe = time.perf_counter()
        self._probed_step = global_step
        nodes = self._probe_nodes
        live = self.task.live_prediction
        if not nodes and not live:
            return
        index = min(self.probe_index, len(self.probe_x) - 1)
        maps, out = probe(self.model, self.probe_x[index:index + 1], nodes, output=live)
        for node, value in maps.items():
            self.callback(FeatureMapEvent(global_step, node, value, index,
                                          kernels(self.model, node)))
        if out is not None:
            prediction = self.task.prediction(out, global_step, index)
            if prediction is not None:
                self.callback(prediction)

    # ---- endings ---------------------------------------------------------------------

    def _save(self, epoch: int) -> None:
        if self.out_dir is None:
            return
        path = self.out_dir / "model.pt"
        self._checkpoint = save_checkpoint(
            path, self.graph, self.model.state_dict(), epoch=epoch, metrics=list(self.metrics),
            optimizer=self.optimizer.state_dict(), optimizer_name=self.config.optimizer,
            scheduler=self.scheduler.state_dict() if self.scheduler is not None else {},
            classes=list(self.dataset.classes), mean=list(self.dataset.mean),
            std=list(self.dataset.std), dataset=self.dataset.name,
            config=self.config.to_dict(), task=self.task.name,
            preprocess=preprocess(self.dataset))
        write_metrics_csv(self.out_dir / "metrics.csv", self.metrics,
                          self.task.columns(self.dataset.classes))

    def _finish_stopped(self, epochs_done: int, last_good: dict) -> DoneEvent:
        """Stopped between two steps: the weights are consistent, so keep them."""
        if self.out_dir is not None:
            self._save(epochs_done)
        return DoneEvent(True, epochs_done, self._checkpoint, list(self.metrics))

    def _diverged(self, epoch: int, step: int, model: nn.Module, last_good: dict, loss: float,
                  first_loss: float) -> FailedEvent:
        """A NaN, infinite or exploding loss: restore the last good weights, keep them on disk."""
        if self._checkpoint is not None and self._checkpoint.parent == self.out_dir:
            model.load_state_dict(load_checkpoint(self._checkpoint)["state_dict"])
        else:
            model.load_state_dict(last_good)
            if self.out_dir is not None:
                self._save(epoch - 1)
        lr = self.optimizer.param_groups[0]["lr"]
        what = ("became NaN" if math.isnan(loss) else "became infinite" if math.isinf(loss)
                else f"exploded to {loss:.3g} (from {first_loss:.3g} at the start)")
        reason = (f"the loss {what} at epoch {epoch}, step {step} (learning rate {lr:g}): "
                  f"training diverged. Lower the learning rate (try "
                  f"{lr / 10:g}), or add BatchNorm; the weights are back to the last good ones"
                  + (f", saved in {self._checkpoint}" if self._checkpoint else ""))
        return FailedEvent("nan", reason, self._checkpoint, {"lr": lr / 10})

    def _oom(self) -> TrainingFailed:
        batch = self.config.batch_size
        torch.cuda.empty_cache()
        mem = self.report.memory(batch, "fp32" if self.amp_dtype is None else "bf16",
                                 self.config.optimizer, self.config.momentum)
        free = free_memory(self.device) or 0
        per_image = max((mem.activations + mem.inputs) / batch, 1)
        fixed = mem.weights + mem.gradients + mem.optimizer_state
        fits = int((free * 0.8 - fixed) / per_image) if free > fixed else 0
        suggested = max(1, min(batch // 2, 2 ** int(math.log2(fits)) if fits >= 1 else 1))
        return TrainingFailed(
            "oom", f"the GPU ({describe_device(self.device)}) ran out of memory at batch size "
                   f"{batch}: use --batch-size {suggested} (Convas estimates "
                   f"{per_image / 2**20:.1f} MiB of activations per image), or mixed "
                   f"precision", batch_size=suggested)


def divergence_limit(first_loss: float, trainer: Trainer) -> float:
    """A cross-entropy this far above where training started only comes from divergence
    (BatchNorm can keep a blown-up network finite, so waiting for NaN is not enough)."""
    chance = math.log(max(trainer.dataset.num_classes, 2))
    return 1000.0 * max(first_loss, chance)


def check_fit(graph: Graph, report, dataset: Dataset, task: Task | None = None) -> None:
    """Refuse before training when the Input, the task, the class count or (for
    segmentation) the output size does not fit the data, naming both sides and the
    fix (the rule is engine.dataset_fit's, which the application uses too); then
    labels the loss cannot take."""
    task = task or task_for(report, dataset.classes)
    misfit = task.misfit(graph, report, dataset)
    if misfit is not None:
        raise DatasetError(misfit.refusal())
    task.check_targets(dataset)


def preprocess(dataset: Dataset) -> dict[str, Any]:
    """What a checkpoint needs to feed the model new images as in training (SPEC §7)."""
    c, h, w = dataset.image_shape
    return {"channels": c, "size": [h, w], "mean": list(dataset.mean),
            "std": list(dataset.std)}


def write_metrics_csv(path: Path, rows: list[dict[str, Any]],
                      columns: list[str] | None = None) -> None:
    """metrics.csv with ``columns`` (the task's; a classifier's by default)."""
    columns = columns or ["epoch", "train_loss", "train_accuracy", "val_loss",
                          "val_accuracy", "seconds", "lr"]
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def _amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp32":
        return None
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("fp16 mixed precision needs a CUDA GPU: use precision fp32 or bf16")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer over the trainable parameters: frozen ones (SPEC §8) are left out,
    so not even weight decay touches them."""
    every = list(model.parameters())
    params = [p for p in every if p.requires_grad]
    if not params:
        raise ConfigError("every block with weights is frozen: nothing would train; "
                          "unfreeze at least one (e.g. the last Linear)" if every else
                          "the design has no weights to train: add a Conv2d or a Linear")
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
               steps_per_epoch: int) -> tuple[Any, bool]:
    """The LR schedule and whether it steps per batch (one-cycle) or per epoch."""
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma), False
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.epochs), False
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch), True
    return None, False
