"""DeepXDE's side of `benchmarks/peers.py` (PyTorch backend; run by an interpreter that has
DeepXDE and torch, not adapinn).

As the multi-library benchmark writes it (`dde.nn.FNN([2] + [100] * 5 + [m], "tanh",
"Glorot normal")`, `model.compile("adam", lr=...)`, `model.train`), but on the given point
arrays: the interior points are the data's anchors (num_domain = num_boundary = num_initial =
0) and every boundary, initial and pressure condition is a `PointSetBC` on its own array, so
the PDE residual is averaged over the interior points only, as in adapinn and jinns (DeepXDE
still differentiates the network at every input row, the condition points included: that is
how its `dde.grad` works). DeepXDE's inputs are (x, t) for Burgers (its convention); the loss
is the sum of one mean squared error per term, weight 1.
"""

from __future__ import annotations

import importlib.metadata
import os
import time
from pathlib import Path

import numpy as np
from peers import BURGERS_NU, NS_LID, NS_NU, Clock, relative_l2, result_record

os.environ.setdefault("DDE_BACKEND", "pytorch")


def _burgers(dde, arrays):
    """(data, net, swap): swap maps (t, x) arrays to DeepXDE's (x, t)."""
    swap = lambda a: np.ascontiguousarray(a[:, ::-1])

    def pde(x, y):
        dy_x = dde.grad.jacobian(y, x, i=0, j=0)
        dy_t = dde.grad.jacobian(y, x, i=0, j=1)
        dy_xx = dde.grad.hessian(y, x, i=0, j=0)
        return dy_t + y * dy_x - BURGERS_NU * dy_xx

    geom = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1),
                                      dde.geometry.TimeDomain(0, 1))
    bc_points = swap(np.concatenate([arrays["points_bc_xmin"], arrays["points_bc_xmax"]]))
    ic_points = swap(arrays["points_ic"])
    bcs = [
        dde.icbc.PointSetBC(bc_points, np.zeros((len(bc_points), 1), np.float32), component=0),
        dde.icbc.PointSetBC(ic_points, -np.sin(np.pi * ic_points[:, 0:1]).astype(np.float32),
                            component=0),
    ]
    data = dde.data.TimePDE(geom, pde, bcs, num_domain=0, num_boundary=0, num_initial=0,
                            anchors=swap(arrays["points_pde"]))
    net = dde.nn.FNN([2] + [100] * 5 + [1], "tanh", "Glorot normal")
    return data, net, swap


def _cavity(dde, arrays):
    def ns(x, u):
        uv, vv = u[:, 0:1], u[:, 1:2]
        u_x = dde.grad.jacobian(u, x, i=0, j=0)
        u_y = dde.grad.jacobian(u, x, i=0, j=1)
        v_x = dde.grad.jacobian(u, x, i=1, j=0)
        v_y = dde.grad.jacobian(u, x, i=1, j=1)
        p_x = dde.grad.jacobian(u, x, i=2, j=0)
        p_y = dde.grad.jacobian(u, x, i=2, j=1)
        u_xx = dde.grad.hessian(u, x, component=0, i=0, j=0)
        u_yy = dde.grad.hessian(u, x, component=0, i=1, j=1)
        v_xx = dde.grad.hessian(u, x, component=1, i=0, j=0)
        v_yy = dde.grad.hessian(u, x, component=1, i=1, j=1)
        return [uv * u_x + vv * u_y + p_x - NS_NU * (u_xx + u_yy),
                uv * v_x + vv * v_y + p_y - NS_NU * (v_xx + v_yy),
                u_x + v_y]

    geom = dde.geometry.Rectangle(xmin=[0, 0], xmax=[1, 1])
    lid = arrays["points_lid"]
    walls = np.concatenate([arrays[f"points_wall_{s}"] for s in ("xmin", "xmax", "ymin")])
    zeros = lambda a: np.zeros((len(a), 1), np.float32)
    lid_u = (NS_LID * lid[:, 0:1] * (1 - lid[:, 0:1])).astype(np.float32)
    bcs = [  # the benchmark's five terms: lid u, lid v, walls u, walls v, p(0, 0)
        dde.icbc.PointSetBC(lid, lid_u, component=0),
        dde.icbc.PointSetBC(lid, zeros(lid), component=1),
        dde.icbc.PointSetBC(walls, zeros(walls), component=0),
        dde.icbc.PointSetBC(walls, zeros(walls), component=1),
        dde.icbc.PointSetBC(arrays["points_p0"], np.zeros((1, 1), np.float32), component=2),
    ]
    data = dde.data.PDE(geom, ns, bcs, num_domain=0, num_boundary=0,
                        anchors=arrays["points_pde"])
    net = dde.nn.FNN([2] + [100] * 5 + [3], "tanh", "Glorot normal")
    return data, net, lambda a: a


def run(job: dict, setup, arrays: dict, job_dir: Path) -> dict:
    import deepxde as dde
    import torch

    torch.set_num_threads(job["torch_threads"])
    dde.config.set_random_seed(job["seed"])
    data, net, to_dde = (_burgers if setup.name == "burgers1d" else _cavity)(dde, arrays)
    model = dde.Model(data, net)
    model.compile("adam", lr=job["lr"])
    chunk, steps = job["chunk"], job["steps"]
    ref_points = to_dde(arrays["ref_points"])
    ref_values = arrays["ref_values"]
    clock, intervals, evals, first = Clock(), [], [], {}

    class Stamps(dde.callbacks.Callback):
        """Clock stamps at every chunk boundary, taken when the next step begins; the first
        step is timed alone (warm-up), the evaluations are outside the clock."""

        def __init__(self):
            super().__init__()
            self.step = 0

        def on_batch_begin(self):
            if self.step == 0:
                first["start"] = time.perf_counter()
            elif self.step == 1:
                first["seconds"] = time.perf_counter() - first["start"]
                clock.reset()
            elif self.step % chunk == 0:
                intervals.append((chunk - 1 if self.step == chunk else chunk, clock.lap()))
                clock.pause()
                evals.append([self.step, relative_l2(self.model.predict(ref_points),
                                                     ref_values)])
                clock.resume()

        def on_batch_end(self):
            self.step += 1

    stamps = Stamps()
    model.train(iterations=steps, display_every=10 * steps, callbacks=[stamps], verbose=0)
    # the last chunk is not timed: it holds DeepXDE's end-of-train test pass
    evals.append([steps, relative_l2(model.predict(ref_points), ref_values)])
    notes = (f"torch {torch.__version__} with {torch.get_num_threads()} threads; one MSE per "
             f"term, weights 1; 'compile' = the first step; the last interval (which holds "
             f"DeepXDE's end-of-train test pass) is not timed")
    return result_record("deepxde", job, first["seconds"], intervals, evals,
                         importlib.metadata.version("deepxde"), notes)
