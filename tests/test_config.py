"""Configs: presets, overrides and the errors a user gets for bad input."""

import pytest

from adapinn.experiments.config import ConfigError, build_config, parse_override
from adapinn.experiments.presets import resolve
from adapinn.experiments.registry import build_problem, build_sampler, build_weighting
from adapinn.problems import Box


def test_override_parses_nested_keys_and_yaml_values():
    assert parse_override("train.steps=100") == {"train": {"steps": 100}}
    assert parse_override("sampler.p_max=0.2") == {"sampler": {"p_max": 0.2}}
    assert parse_override("network.periodic=false") == {"network": {"periodic": False}}
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("train.steps")


def test_packaged_config_defaults_to_quick_preset_and_paper_is_seed000():
    quick = resolve("burgers")
    paper = resolve("allen_cahn", preset="paper")
    assert quick.train.steps < paper.train.steps == 200_000
    assert paper.train.batch_size == 4096
    assert (paper.network.depth, paper.network.width) == (4, 256)


def test_cpu30_preset_keeps_the_base_weighting_and_replaces_the_network():
    cpu30, quick = resolve("allen_cahn", preset="cpu30"), resolve("allen_cahn")
    assert cpu30.network.name == "modified_mlp" and cpu30.network.periodic
    assert (cpu30.network.fourier_features, cpu30.network.factorized) == (128, True)
    assert cpu30.weighting == quick.weighting and cpu30.train.grad_clip == 1.0
    train = cpu30.train
    assert (train.batch_size, train.decay_steps, train.steps) == (256, 6000, 300_000)


def test_overrides_and_seed_win_over_presets():
    cfg = resolve("burgers", overrides=["train.steps=7", "network.width=8"], seed=3)
    assert (cfg.train.steps, cfg.network.width, cfg.seed) == (7, 8, 3)


def test_renaming_a_sampler_drops_its_options_but_a_network_keeps_its_embeddings():
    cfg = resolve(
        "allen_cahn",
        preset="cpu30",
        overrides=["sampler.name=rad", "sampler.k=2.0", "sampler.name=uniform"]
        + ["network.name=pirate"],
    )
    assert cfg.sampler.name == "uniform" and "k" not in cfg.sampler.model_extra
    assert cfg.network.name == "pirate"
    assert (cfg.network.width, cfg.network.fourier_features, cfg.network.factorized) == (
        128,
        128,
        True,
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.stepz=5"], "unknown key 'train.stepz'"),
        (["train.steps=many"], "train.steps"),
        (["network.width=-1"], "network.width"),
        (["network.name=transformer"], "network.name"),
    ],
)
def test_bad_keys_and_types_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve("burgers", overrides=overrides)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="valid problems: allen_cahn, burgers"):
        build_problem(resolve("burgers", overrides=["problem.name=heat"]))
    cfg = resolve("burgers", overrides=["sampler.name=magic"])
    with pytest.raises(ConfigError, match="unknown sampler 'magic'.*uniform"):
        build_sampler(cfg.sampler, Box((0, 0), (1, 1)), 8)
    with pytest.raises(ConfigError, match="has no option 'speed'"):
        build_weighting(resolve("burgers", overrides=["weighting.speed=3"]))
    with pytest.raises(ConfigError, match="weighting.every"):
        build_weighting(resolve("allen_cahn", overrides=["weighting.name=gradnorm",
                                                        "weighting.every=soon"]))


def test_unknown_preset_and_missing_or_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'huge'.*paper"):
        resolve("burgers", preset="huge")
    with pytest.raises(ConfigError, match="does not exist"):
        resolve(str(tmp_path / "nope.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: {steps: [1, 2\n")
    with pytest.raises(ConfigError, match="does not parse"):
        resolve(str(broken))
    from adapinn.experiments.registry import complete

    with pytest.raises(ConfigError, match=r"unknown problem 'navier'; valid problems: .*kovasznay"):
        complete(resolve("navier"))  # a name that is no config is a problem, checked here
    assert resolve("kovasznay").problem.name == "kovasznay"  # a problem without a config


def test_user_config_file_with_its_own_presets(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "problem: {name: burgers}\ntrain: {steps: 50}\npresets: {quick: {train: {steps: 5}}}\n"
    )
    assert resolve(str(path)).train.steps == 5
    assert build_config({"train": {"steps": 9}}).train.steps == 9


def test_changing_a_section_name_drops_the_old_entrys_options():
    cfg = resolve("burgers", overrides=["weighting.name=gradnorm"])
    assert cfg.weighting.name == "gradnorm" and cfg.weighting.options == {}
    build_weighting(cfg)


@pytest.mark.parametrize("overrides", [["trian.steps=3"], ["sampeler.name=rad"]])
def test_misspelt_section_lists_the_sections_and_suggests_the_nearest(overrides):
    near = "train" if overrides[0].startswith("trian") else "sampler"
    with pytest.raises(ConfigError, match=rf"unknown section '\w+' \(did you mean '{near}'\?\); "
                                          "valid sections: problem, network, sampler, "
                                          "weighting, aggregator, rounds, train, eval"):
        resolve("burgers", overrides=overrides)


def test_misspelt_section_or_key_in_a_yaml_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("problem: {name: burgers}\nsampeler: {name: rad}\n")
    with pytest.raises(ConfigError, match=r"unknown section 'sampeler' \(did you mean "
                                          r"'sampler'\?\); valid sections: problem"):
        resolve(str(path))
    path.write_text("network: {widht: 8}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'network.widht' \(did you mean "
                                          r"'network.width'\?\); keys of network: name, width"):
        resolve(str(path))


def test_complete_fills_every_named_sections_defaults_and_keeps_given_values(tmp_path):
    from adapinn.experiments.config import dump, load_yaml, validate
    from adapinn.experiments.registry import build_aggregator, complete

    cfg = resolve("burgers", overrides=[
        "sampler.name=hardbank", "sampler.p_max=0.3", "aggregator.name=pcgrad",
        "aggregator.gtn=false", "weighting.name=chain",
        "weighting.schemes=[{name: causal, tol: 2.0}, {name: gradnorm}, {name: fixed}]"])
    full = complete(cfg)
    assert full.sampler.options["p_max"] == 0.3 and full.sampler.options["start_step"] == 15000
    assert set(full.sampler.options) == {
        "refresh_every", "pool_mult", "top_frac", "bank_mult", "replace", "start_step",
        "p_max", "ramp", "ramp_steps", "importance_weights", "iw_cells", "schedule",
        "anneal_start", "anneal_steps", "benefit_threshold", "benefit_decay",
        "benefit_probe"}
    assert full.aggregator.options == {"gtn": False, "momentum": 0.99, "eps": 1e-8}
    causal, gradnorm, fixed = full.weighting.options["schemes"]
    assert causal == {"name": "causal", "n_chunks": 32, "tol": 2.0, "time_axis": 0,
                      "term": "pde"}
    assert gradnorm["every"] == 1000 and gradnorm["normalisation"] == "mean"
    assert fixed == {"name": "fixed", "weights": {}}
    assert full.problem.options == {"nu": pytest.approx(0.01 / 3.141592653589793)}  # not nt/nx
    assert complete(full) == full  # idempotent
    (tmp_path / "config.yaml").write_text(dump(full))  # what a run saves
    saved = load_yaml(tmp_path / "config.yaml")
    assert saved["sampler"]["replace"] == "random" and validate(saved) == full
    build_weighting(full), build_aggregator(full)
    build_sampler(full.sampler, Box((0, 0), (1, 1)), 8)
    fixed_weights = complete(build_config({"weighting": {"name": "fixed"}}))
    assert fixed_weights.weighting.options == {"weights": {}}  # stored as (), written as {}
    assert complete(resolve("burgers")).weighting.options["weights"]["ic"] == 10.0  # given


def test_complete_reports_unknown_names_and_eval_grid_stays_the_evals():
    from adapinn.experiments.registry import complete

    with pytest.raises(ConfigError, match="valid samplers"):
        complete(resolve("burgers", overrides=["sampler.name=magic"]))
    full = complete(resolve("burgers", overrides=["eval.nt=11", "eval.nx=16"]))
    assert build_problem(full).reference_data().values.shape == (11 * 16, 1)
