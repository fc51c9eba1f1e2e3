"""A user-defined PDE in about 20 lines (the README example) trains to a small error."""

import json

import jax.numpy as jnp

from adapinn import (
    Box,
    Condition,
    Problem,
    RunConfig,
    Union,
    first_derivative,
    fit,
    second_derivative,
)


def heat(u, x):  # x = (t, y): the residual at ONE point
    _, u_t = first_derivative(u, x, 0)
    _, _, u_yy = second_derivative(u, x, 1)
    return u_t - 0.1 * u_yy


def heat_problem() -> Problem:
    space_time = Box((0.0, 0.0), (1.0, 1.0))
    return Problem(
        name="heat",
        domain=space_time,
        conditions={
            "pde": Condition(space_time, heat),
            "ic": Condition(Box((0, 0), (0, 1)), lambda u, x: u(x) - jnp.sin(jnp.pi * x[1])),
            "bc": Condition(Union(Box((0, 0), (1, 0)), Box((0, 1), (1, 1))), lambda u, x: u(x)),
        },
        input_names=("t", "y"),
        exact=lambda x: jnp.exp(-0.1 * jnp.pi**2 * x[0]) * jnp.sin(jnp.pi * x[1]),
    )


def test_exact_solution_satisfies_every_condition():
    problem = heat_problem()
    u = problem.exact
    for name, cond in problem.conditions.items():
        pts = cond.domain.sample(__import__("jax").random.PRNGKey(0), 64)
        assert float(problem.residuals(lambda x: jnp.atleast_1d(u(x)), name, pts).max()) < 1e-9


def test_user_pde_trains_to_low_error(tmp_path):
    config = RunConfig(
        network={"width": 32, "depth": 3},
        train={"steps": 3000, "batch_size": 256, "condition_batch_size": 64, "eval_every": 500,
               "checkpoint_every": 3000, "decay_steps": 250, "decay_rate": 0.8,
               "lbfgs_steps": 500, "lbfgs_batch_size": 1024},
    )
    summary = fit(config, tmp_path / "heat", problem=heat_problem(), progress=False)
    assert summary["problem"] == "heat"
    assert summary["rel_l2"] < 1e-2, summary["rel_l2"]
    rows = [json.loads(r) for r in (tmp_path / "heat" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["rel_l2"] < rows[0]["rel_l2"]
