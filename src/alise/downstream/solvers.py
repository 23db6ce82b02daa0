"""How a probe's parameters are fitted: full-batch L-BFGS, or mini-batch Adam with early stopping.

Every representation figure alise prints comes out of these two functions, so both say how they
stopped. A linear probe that stops while its loss still falls measures the optimiser, not the
representation.

* :func:`fit_lbfgs` — multinomial logistic regression on a table of training pixels that fits in
  memory: ``torch.optim.LBFGS`` (strong-Wolfe line search) on the mean cross-entropy plus
  ``‖W‖² / (2·C·N)``, which is scikit-learn's ``LogisticRegression(C)`` objective divided by
  ``C·N`` (same minimiser; biases are not penalised). One fit per ``C`` of a small grid, warm
  started from the strongest penalty; the ``C`` with the best validation macro-F1 is kept.
  Stops when the largest gradient entry is below ``tol`` (``converged``) or after ``max_iter``
  iterations (``budget``).
* :func:`fit_minibatch` — the loop of every gradient-step protocol (pixels of a table too large
  for memory, the paper's Adam + ReduceLROnPlateau on tiles, fine-tuning): a step budget,
  validation every ``eval_every`` steps, ReduceLROnPlateau on the validation loss, the weights of
  the best validation macro-F1 kept, early stop after ``patience`` steps without improvement.
  Reports ``early_stop``, ``converged`` (the training loss changed by less than ``tol`` relative
  over the last evaluation interval) or ``budget``.

Both return a :class:`FitReport` (JSON-ready) with the loss curve.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Default L2 grid of the L-BFGS probe (scikit-learn's ``C``: inverse penalty strength).
C_GRID: tuple[float, ...] = (1e-3, 1e-2, 0.1, 1.0, 10.0)


@dataclass
class FitReport:
    """How a fit went: ``solver``, ``stopped`` (converged | budget | early_stop), the selected ``C``
    and step, the per-``C`` grid (L-BFGS) and the loss ``history`` (one dict per iteration or
    evaluation)."""

    solver: str
    stopped: str
    steps: int
    selected_step: int | None = None
    C: float | None = None
    grid: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _objective(head: nn.Module, forward: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, l2: float) -> Tensor:
    """Mean cross-entropy of ``forward(x (N, F))`` against ``y (N,)`` + ``l2/2 · Σ W²`` of the head."""
    loss = F.cross_entropy(forward(x), y)
    if l2 > 0:
        loss = loss + 0.5 * l2 * sum(p.square().sum() for p in head.regularised())
    return loss


def fit_lbfgs(head: nn.Module, train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor],
              score: Callable[[Tensor, Tensor], float], Cs: Sequence[float] = C_GRID, max_iter: int = 1000,
              tol: float = 1e-4, forward: Callable[[Tensor], Tensor] | None = None) -> FitReport:
    """Full-batch L-BFGS for each ``C`` of ``Cs``; keep the best validation ``score``.

    Args:
        head: module with ``forward_flat((N, F)) → (N, K)`` and ``regularised()`` (parameters
            under the L2 penalty); its parameters are fitted in place (final: the selected C).
        train, val: ``(x (N, F), y (N,) int64)`` tables, already on the head's device/dtype.
        score: ``score(y_true, logits) → float`` to maximise on validation (macro-F1).
        Cs: inverse penalty strengths (scikit-learn convention: penalty ``‖W‖² / (2·C·N)``).
        forward: the logits of a table (default ``head.forward_flat``), e.g. a cheaper form for
            tables already transformed once.
        max_iter: iteration budget of each fit; tol: gradient max-norm that counts as converged
            (1e-4: scikit-learn's default `gtol` for the same objective).

    Returns:
        :class:`FitReport` (``history``: the objective at each iteration of the selected ``C``).
    """
    x, y = train
    n = x.shape[0]
    forward = forward or head.forward_flat
    params = [p for p in head.parameters() if p.requires_grad]
    best: tuple[float, float, dict, dict, list] | None = None
    grid = []
    for C in sorted(float(c) for c in Cs):
        l2 = 1.0 / (C * n)
        opt = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, max_eval=int(max_iter * 1.25) + 1,
                                tolerance_grad=tol, tolerance_change=1e-12, history_size=20,
                                line_search_fn="strong_wolfe")
        curve: list[float] = []

        def closure() -> Tensor:
            opt.zero_grad(set_to_none=True)
            loss = _objective(head, forward, x, y, l2)
            loss.backward()
            curve.append(float(loss.detach()))
            return loss

        opt.step(closure)
        iters = int(opt.state[params[0]].get("n_iter", 0))
        loss = _objective(head, forward, x, y, l2)
        grads = torch.autograd.grad(loss, params)
        gmax = max(float(g.abs().max()) for g in grads)
        with torch.no_grad():
            logits = forward(val[0])
            s = float(score(val[1], logits))
            vloss = float(_masked_ce(logits, val[1]))
        converged = gmax <= tol or iters < max_iter
        row = {"C": C, "val_macro_f1": s, "val_loss": vloss, "train_objective": float(loss.detach()),
               "iterations": iters, "grad_max": gmax, "stopped": "converged" if converged else "budget"}
        grid.append(row)
        if best is None or s > best[0]:
            best = (s, C, copy.deepcopy(head.state_dict()), row, curve)
    head.load_state_dict(best[2])
    row = best[3]
    history = [{"iteration": i + 1, "train_objective": v} for i, v in enumerate(best[4])]
    return FitReport("lbfgs", row["stopped"], row["iterations"], row["iterations"], best[1], grid, history)


def _masked_ce(logits: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy over the pixels whose class the head can predict (finite target logit)."""
    ok = torch.isfinite(logits.gather(1, y[:, None]))[:, 0]
    if not bool(ok.any()):
        return logits.new_zeros(())
    return F.cross_entropy(logits[ok], y[ok])


@dataclass(frozen=True)
class LoopConfig:
    """Budget and schedule of :func:`fit_minibatch` (all counts in optimisation steps)."""

    lr: float
    steps: int
    eval_every: int
    patience: int
    lr_patience: int = 10  # evaluations without a lower validation loss before the LR is cut
    lr_factor: float = 0.05
    min_lr: float = 1e-6
    weight_decay: float = 0.0
    tol: float = 1e-4


def fit_minibatch(params: list[nn.Parameter], step_loss: Callable[[int], tuple[Tensor | None, int]],
                  evaluate: Callable[[], dict], state: Callable[[], dict], load: Callable[[dict], None],
                  cfg: LoopConfig, *, solver: str = "adam", train_mode: Callable[[bool], None] | None = None,
                  progress: bool = False, desc: str = "",
                  announce: Callable[[float], None] | None = None) -> FitReport:
    """Adam + ReduceLROnPlateau, best validation macro-F1 kept, early stopping counted in steps.

    Args:
        params: the parameters that train.
        step_loss: ``step_loss(step) → (summed loss, n)``: the loss of one mini-batch (``None``
            when the batch holds no labelled pixel); the step minimises ``loss / n``.
        evaluate: ``() → {"loss", "macro_f1"}`` on the validation split (current weights).
        state, load: snapshot / restore of the trained weights.
        cfg: :class:`LoopConfig`.
        train_mode: optional ``fn(training: bool)`` called before steps / evaluations.
        announce: optional ``fn(seconds)`` called once with the duration of the first step (to
            tell the user what the run will cost before it has cost it).

    Returns:
        :class:`FitReport`; the weights of the selected step are loaded.
    """
    import time

    from tqdm.auto import tqdm

    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=cfg.lr_factor,
                                                       patience=cfg.lr_patience, min_lr=cfg.min_lr)
    best_f1, best_step, best_state = -math.inf, 0, state()
    history: list[dict] = []
    window, n_window, prev_window, stopped = 0.0, 0, None, "budget"
    bar = tqdm(total=cfg.steps, desc=desc, unit="step", disable=not progress, leave=False)
    step = 0
    while step < cfg.steps:
        if train_mode is not None:
            train_mode(True)
        started = time.perf_counter()
        loss, n = step_loss(step)
        step += 1
        bar.update(1)
        if loss is not None and n > 0:
            opt.zero_grad(set_to_none=True)
            (loss / n).backward()
            opt.step()
            window, n_window = window + float(loss.detach()), n_window + n
        if step == 1 and announce is not None:
            announce(time.perf_counter() - started)
        if step % cfg.eval_every and step < cfg.steps:
            continue
        if train_mode is not None:
            train_mode(False)
        val = evaluate()
        sched.step(val["loss"])
        train_loss = window / max(n_window, 1)
        history.append({"step": step, "train_loss": train_loss, "val_loss": val["loss"],
                        "val_macro_f1": val["macro_f1"], "lr": opt.param_groups[0]["lr"]})
        bar.set_postfix(val_f1=f"{val['macro_f1']:.3f}")
        if val["macro_f1"] > best_f1:
            best_f1, best_step, best_state = val["macro_f1"], step, state()
        if step - best_step >= cfg.patience:
            stopped = "early_stop"
            break
        if prev_window is not None and abs(prev_window - train_loss) <= cfg.tol * max(abs(prev_window), 1e-12):
            stopped = "converged"
            break
        prev_window, window, n_window = train_loss, 0.0, 0
    bar.close()
    load(best_state)
    return FitReport(solver, stopped, step, best_step, None, [], history)
