"""L-BFGS with PyTorch's closure protocol and optional strong-Wolfe line search.

L-BFGS decides what to do from values (the loss, the gradient's size, directional
derivatives), so each iteration reads a few numbers back. Vectors stay tensors: the flat
gradient, the search direction and the curvature pairs are realized buffers, and each
update is realized as soon as it is made, so no graph grows across iterations and every
realize repeats the structure of an earlier one (the two-loop recursion realizes one
history entry at a time: one plan, replayed, whatever the history's length).
"""
from __future__ import annotations

import math
from typing import Any, Callable

from ..autograd import enable_grad, no_grad
from ..frontend import creation
from ..frontend.joining import cat
from ..frontend.tensor import Tensor, realize_tensors
from .optimizer import Optimizer, _check_args, _value, group_device, scalar

__all__ = ["LBFGS"]


def _cubic_interpolate(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
                       bounds: tuple[float, float] | None = None) -> float:
    """The minimizer of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to bounds
    (the interval between x1 and x2 by default); the bounds' midpoint if it has none."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _dot(a: Tensor, b: Tensor) -> float:
    return float(a.dot(b))


def _strong_wolfe(obj_func: Callable, x: list[Tensor], t: float, d: Tensor, f: float,
                  g: Tensor, gtd: float, c1: float = 1e-4, c2: float = 0.9,
                  tolerance_change: float = 1e-9, max_ls: int = 25):
    """A step t along d satisfying the strong Wolfe conditions (minFunc's bracketing and
    zoom, as PyTorch's lbfgs): returns (f_new, g_new, t, evaluations)."""
    d_norm = float(d.abs().amax())
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = _dot(g_new, d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                               bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new, gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = _dot(g_new, d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]
    # zoom: refine the bracket until a point satisfies the conditions
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1],
                               bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            # too close to an end of the bracket: move 0.1 of its length inside
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = _dot(g_new, d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new, gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new, gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


class LBFGS(Optimizer):
    """L-BFGS (PyTorch's algorithm, after minFunc): step(closure) runs up to max_iter
    iterations, each a quasi-Newton direction from the last history_size curvature pairs and
    a fixed step lr (or a strong-Wolfe line search); closure() clears the gradients, computes
    the loss, calls backward() and returns the loss. One parameter group only."""

    def __init__(self, params, lr: float | Tensor = 1, max_iter: int = 20,
                 max_eval: int | None = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None) -> None:
        _check_args(lr)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = {"lr": lr, "max_iter": max_iter, "max_eval": max_eval,
                    "tolerance_grad": tolerance_grad, "tolerance_change": tolerance_change,
                    "history_size": history_size, "line_search_fn": line_search_fn}
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]
        self._numel_cache: int | None = None

    @property
    def _where(self) -> str:
        """The device of the step's scalars: the parameters' (see group_device)."""
        return group_device(self.param_groups[0])

    def _numel(self) -> int:
        if self._numel_cache is None:
            self._numel_cache = sum(p.numel() for p in self._params)
        return self._numel_cache

    def _gather_flat_grad(self) -> Tensor:
        """The gradients joined into one vector (zeros for parameters without one), realized
        together with the gradients themselves."""
        grads = [p.grad for p in self._params if p.grad is not None]
        flat = cat([p.grad.reshape(-1) if p.grad is not None else
                    creation.zeros(p.numel(), dtype=p.dtype, device=p.device)
                    for p in self._params], 0)
        realize_tensors([flat] + grads)
        return flat

    def _add_grad(self, step_size: float, update: Tensor) -> None:
        """p += step_size * (p's slice of update), for every parameter, realized now."""
        offset = 0
        step = scalar(step_size, device=self._where)
        for p in self._params:
            n = p.numel()
            piece = update[offset:offset + n].reshape(tuple(p.shape))
            p._assign((p + step * piece).node)
            offset += n
        if offset != self._numel():
            raise AssertionError(f"Expected offset {offset} to equal {self._numel()}")
        realize_tensors(self._params)

    def _clone_param(self) -> list[Tensor]:
        realize_tensors(self._params)
        return [Tensor._make(p.node) for p in self._params]   # buffers are immutable

    def _set_param(self, params_data: list[Tensor]) -> None:
        for p, pdata in zip(self._params, params_data):
            p.copy_(pdata)

    def _evaluate(self, closure: Callable) -> float:
        with enable_grad():
            return float(closure())

    def _directional_evaluate(self, closure: Callable, x: list[Tensor], t: float,
                              d: Tensor) -> tuple[float, Tensor]:
        self._add_grad(t, d)
        loss = self._evaluate(closure)
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    def step(self, closure: Callable[[], Any]):  # type: ignore[override]
        """Up to max_iter L-BFGS iterations; returns the loss closure() gave first."""
        with no_grad():
            return self._iterate(closure)

    def _iterate(self, closure: Callable[[], Any]):
        group = self.param_groups[0]
        lr = float(_value(group["lr"]))
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]
        # the state is global; it is kept under the first parameter, as PyTorch does
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        with enable_grad():
            orig_loss = closure()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        opt_cond = False
        flat_grad = self._gather_flat_grad()
        if float(flat_grad.abs().amax()) <= tolerance_grad:
            return orig_loss
        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps = state.get("old_dirs"), state.get("old_stps")
        ro, H_diag = state.get("ro"), state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            # the descent direction
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro, H_diag = [], [], [], 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * scalar(t, device=self._where)
                ys = y.dot(s)
                ro_new, h_new = 1.0 / ys, ys / y.dot(y)
                realize_tensors([y, s, ys, ro_new, h_new])
                if ys.item() > 1e-10:
                    if len(old_dirs) == history_size:   # forget the oldest pair
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(ro_new)
                    H_diag = h_new
                d = self._two_loop(state, history_size, flat_grad, old_dirs, old_stps, ro,
                                   H_diag)
            prev_flat_grad = flat_grad
            prev_loss = loss
            # the step length
            if state["n_iter"] == 1:
                t = min(1.0, float(1.0 / flat_grad.abs().sum())) * lr
            else:
                t = lr
            gtd = _dot(flat_grad, d)
            if gtd > -tolerance_change:
                break
            ls_func_evals = 0
            if line_search_fn is not None:
                if line_search_fn != "strong_wolfe":
                    raise RuntimeError("only 'strong_wolfe' is supported")
                x_init = self._clone_param()

                def obj_func(x, t, d):
                    return self._directional_evaluate(closure, x, t, d)

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    obj_func, x_init, t, d, loss, flat_grad, gtd,
                    max_ls=max_eval - current_evals)
                self._add_grad(t, d)
                opt_cond = float(flat_grad.abs().amax()) <= tolerance_grad
            else:
                self._add_grad(t, d)
                if n_iter != max_iter:
                    # a fixed step: evaluate again, except after the last iteration
                    loss = self._evaluate(closure)
                    flat_grad = self._gather_flat_grad()
                    opt_cond = float(flat_grad.abs().amax()) <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if float((d * scalar(t, device=self._where)).abs().amax()) <= tolerance_change:
                break   # no progress in the parameters
            if abs(loss - prev_loss) < tolerance_change:
                break   # no progress in the loss
        state.update({"d": d, "t": t, "old_dirs": old_dirs, "old_stps": old_stps, "ro": ro,
                      "H_diag": H_diag, "prev_flat_grad": prev_flat_grad,
                      "prev_loss": prev_loss})
        return orig_loss

    @staticmethod
    def _two_loop(state: dict, history_size: int, flat_grad: Tensor, old_dirs: list[Tensor],
                  old_stps: list[Tensor], ro: list[Tensor], H_diag) -> Tensor:
        """-H g, H the L-BFGS inverse Hessian of the stored pairs, by the two-loop recursion;
        each history entry's update is realized at once (the same structure every time)."""
        if "al" not in state:
            state["al"] = [None] * history_size
        al = state["al"]
        q = -flat_grad
        for i in range(len(old_dirs) - 1, -1, -1):
            al[i] = old_stps[i].dot(q) * ro[i]
            q = q - al[i] * old_dirs[i]
            realize_tensors([q, al[i]])
        r = q * H_diag
        realize_tensors([r])
        for i in range(len(old_dirs)):
            be_i = old_dirs[i].dot(r) * ro[i]
            r = r + (al[i] - be_i) * old_stps[i]
            realize_tensors([r])
        return r
