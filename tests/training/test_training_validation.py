"""fit(..., validation_data=...): held-out loss in the history, early stopping, resume."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ebm_ppl import fit
from ebm_ppl.objectives import score_matching
from ebm_ppl.training import list_checkpoints

SM = score_matching()
ADAM = optax.adam(0.05)
FROZEN = optax.sgd(0.0)  # parameters never move: the held-out loss never improves


def gaussian_energy(params, x):
    return 0.5 * jnp.sum(jnp.exp(params["log_prec"]) * (x - params["mu"]) ** 2)


def init_params():
    return {"mu": jnp.zeros(2), "log_prec": jnp.zeros(2)}


def make_data(seed, n):
    rng = np.random.default_rng(seed)
    return np.array([1.0, -1.0]) + np.array([0.5, 2.0]) * rng.normal(size=(n, 2))


TRAIN, HELD_OUT = make_data(0, 400), make_data(1, 130)


@pytest.mark.slow
def test_held_out_loss_is_recorded_every_k_steps():
    result = fit(gaussian_energy, init_params(), TRAIN, SM, ADAM, num_steps=60,
                 batch_size=50, progress=False, validation_data=HELD_OUT, validate_every=20)
    history = result.history
    assert {"val_loss", "val_score_norm", "val_laplacian"} <= set(history)
    assert all(history[k].shape == (60,) for k in history)
    evaluated = np.flatnonzero(np.isfinite(history["val_loss"]))
    np.testing.assert_array_equal(evaluated, [0, 20, 40])
    # step 0 evaluates the initial parameters on the held-out batches (2 x 50 examples:
    # the last 30 are left out); score matching's loss is a mean over examples
    expected, _ = SM.loss(init_params(), jnp.asarray(HELD_OUT[:100]), jax.random.key(0),
                          gaussian_energy)
    np.testing.assert_allclose(history["val_loss"][0], expected, rtol=1e-5)
    # training lowers the held-out loss too, and the best one is reported
    assert history["val_loss"][40] < history["val_loss"][0]
    assert result.best_val_loss == np.nanmin(history["val_loss"])
    assert not result.stopped_early
    assert "validation loss" in str(result)
    idata = result.to_inference_data()
    assert "val_loss" in idata.training


@pytest.mark.slow
def test_early_stopping_stops_after_patience_evaluations():
    kwargs = dict(num_steps=200, batch_size=50, progress=False, validation_data=HELD_OUT,
                  validate_every=5)
    # frozen parameters: evaluations at 0 (best), 5, 10, 15 (three without improvement)
    stopped = fit(gaussian_energy, init_params(), TRAIN, SM, FROZEN, patience=3, **kwargs)
    assert stopped.stopped_early and stopped.steps == 16
    assert "stopped early" in str(stopped)
    # the same run without patience goes to the end: the stop is the patience's doing
    full = fit(gaussian_energy, init_params(), TRAIN, SM, FROZEN, **kwargs)
    assert not full.stopped_early and full.steps == 200
    # and a run whose held-out loss keeps improving is not stopped
    improving = fit(gaussian_energy, init_params(), TRAIN, SM, optax.adam(0.01),
                    patience=3, **{**kwargs, "num_steps": 60})
    assert not improving.stopped_early and improving.steps == 60


def test_early_stopping_survives_resume(tmp_path):
    kwargs = dict(batch_size=50, progress=False, validation_data=HELD_OUT, validate_every=5,
                  patience=3, checkpoint_dir=tmp_path, checkpoint_every=5, steps_per_chunk=5)
    first = fit(gaussian_energy, init_params(), TRAIN, SM, FROZEN, num_steps=10, **kwargs)
    assert first.steps == 10 and not first.stopped_early
    resumed = fit(gaussian_energy, init_params(), TRAIN, SM, FROZEN, num_steps=200, **kwargs)
    assert resumed.stopped_early and resumed.steps == 16
    assert list_checkpoints(tmp_path)[-1] == 16
    np.testing.assert_array_equal(np.flatnonzero(np.isfinite(resumed.history["val_loss"])),
                                  [0, 5, 10, 15])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(patience=2), "patience needs validation_data to watch"),
        (dict(validation_data=np.zeros((10, 3))),
         r"validation_data must hold examples of shape \(2,\)"),
        (dict(validation_data=np.full((10, 2), np.nan)), "validation_data must be finite"),
        (dict(validation_data=HELD_OUT, validate_every=0),
         "validate_every must be an integer >= 1, got 0"),
        (dict(validation_data=HELD_OUT, patience=0), "patience must be an integer >= 1, got 0"),
    ],
)
def test_validation_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit(gaussian_energy, init_params(), TRAIN, SM, ADAM, num_steps=5, batch_size=50,
            progress=False, **kwargs)


def test_validation_added_on_resume_keeps_every_history_entry(tmp_path):
    kwargs = dict(batch_size=50, progress=False, checkpoint_dir=tmp_path, steps_per_chunk=10)
    fit(gaussian_energy, init_params(), TRAIN, SM, ADAM, num_steps=10, **kwargs)
    resumed = fit(gaussian_energy, init_params(), TRAIN, SM, ADAM, num_steps=30,
                  validation_data=HELD_OUT, validate_every=10, **kwargs)
    history = resumed.history
    assert all(v.shape == (30,) for v in history.values())
    # the first 10 steps ran without held-out data: NaN there, evaluations at 10 and 20
    np.testing.assert_array_equal(np.flatnonzero(np.isfinite(history["val_loss"])), [10, 20])
