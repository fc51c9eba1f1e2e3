"""Experiment tracking (`train.loggers`): TensorBoard and W&B (offline) write what the run logs,
read back from their own files; a missing package fails at start, naming the fix."""

import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from adapinn.cli import main
from adapinn.errors import ConfigError
from adapinn.experiments.compare import plan
from adapinn.experiments.config import build_config
from adapinn.train import loggers
from adapinn.train.loggers import LoggedMetrics, Loggers, check_available, open_loggers
from adapinn.train.records import MetricsLog
from tests.conftest import TINY

CONFIG = {"train": {"lr": 0.001, "steps": 30, "loggers": ["tensorboard"]}, "seed": 3}
ROWS = [
    {"step": 10, "phase": "adam", "rel_l2": 0.5, "loss": 2.0, "loss_pde": 1.5, "lr": 1e-3},
    {"step": 20, "phase": "adam", "rel_l2": None, "loss": 1.0, "loss_pde": 0.75, "lr": 1e-3},
    {"step": 30, "phase": "lbfgs", "rel_l2": 0.25, "loss": 0.5, "loss_pde": 0.25, "lr": 0.0,
     "lbfgs_iteration": 10},
]


def _png(path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    fig.savefig(path, dpi=20)
    plt.close(fig)
    return path


# --- TensorBoard --------------------------------------------------------------------------

def _events(folder: Path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0,
                                                       "tensors": 0})
    acc.Reload()
    return acc


def _scalars(acc, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_tensorboard_writes_scalars_config_and_images(tmp_path):
    pytest.importorskip("tensorboardX")
    with open_loggers(["tensorboard"], tmp_path, CONFIG, name="arm-a", group="cmp") as tracker:
        for row in ROWS:
            tracker.log_row(row)
        tracker.log_images({"curve": _png(tmp_path / "curve.png"),
                            "absent": tmp_path / "absent.png"})
    acc = _events(tmp_path / loggers.TENSORBOARD_DIR)
    assert _scalars(acc, "loss") == [(10, 2.0), (20, 1.0), (30, 0.5)]
    assert _scalars(acc, "rel_l2") == [(10, 0.5), (30, 0.25)]  # None is skipped
    assert _scalars(acc, "lbfgs_iteration") == [(30, 10.0)]
    tags = acc.Tags()
    assert "step" not in tags["scalars"] and "phase" not in tags["scalars"]
    [image] = acc.Images("plots/curve")
    assert image.step == 30 and image.width == 20 and image.height == 20
    assert "plots/absent" not in tags["images"]
    [text] = acc.Tensors("config/text_summary")
    config_text = text.tensor_proto.string_val[0].decode()
    assert "arm-a" in config_text and "cmp" in config_text and '"lr": 0.001' in config_text


def test_tensorboard_hparams_hold_the_flat_config(tmp_path):
    pytest.importorskip("tensorboardX")
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import plugin_data_pb2

    with open_loggers(["tensorboard"], tmp_path, CONFIG, name="arm-a", group=None):
        pass
    acc = _events(tmp_path / loggers.TENSORBOARD_DIR)
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert start.hparams["train.lr"].number_value == 0.001
    assert start.hparams["seed"].number_value == 3
    assert start.hparams["train.loggers"].string_value == '["tensorboard"]'
    assert start.hparams["run"].string_value == "arm-a"


# --- W&B (offline) ------------------------------------------------------------------------

@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    for var, sub in (("WANDB_DIR", "wandb-dir"), ("WANDB_CACHE_DIR", "wandb-cache"),
                     ("WANDB_CONFIG_DIR", "wandb-config"), ("WANDB_DATA_DIR", "wandb-data")):
        (tmp_path / sub).mkdir()
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    wandb.teardown()  # a fresh W&B session reads these variables
    yield tmp_path / "wandb-dir"
    wandb.teardown()


def _wandb_records(folder: Path) -> list:
    """The records of the one offline run under `folder`, read from its `.wandb` transaction
    log (LevelDB log format: 32 KiB blocks of chunks with a 7-byte header, after W&B's 7-byte
    file header), each a `wandb_internal_pb2.Record`."""
    from wandb.proto import wandb_internal_pb2

    [path] = folder.glob("wandb/offline-run-*/run-*.wandb")
    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    out, pos, buf = [], 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk  # FULL, FIRST / MIDDLE, LAST
        if kind in (1, 4):
            out.append(wandb_internal_pb2.Record.FromString(buf))
    return out


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def _wandb_history(folder: Path) -> list[dict]:
    return [{_key(i): json.loads(i.value_json) for i in r.history.item}
            for r in _wandb_records(folder) if r.WhichOneof("record_type") == "history"]


def _wandb_run(folder: Path):
    [run] = [r.run for r in _wandb_records(folder) if r.WhichOneof("record_type") == "run"]
    return run


def test_wandb_offline_run_holds_rows_config_group_and_images(offline_wandb, tmp_path):
    with open_loggers(["wandb"], tmp_path / "run", CONFIG, name="arm-a", group="cmp") as t:
        for row in ROWS:
            t.log_row(row)
        t.log_images({"curve": _png(tmp_path / "curve.png")})
    assert not (tmp_path / "run" / loggers.WANDB_DIR).exists()  # WANDB_DIR is set
    history = _wandb_history(offline_wandb)
    assert [h["_step"] for h in history] == [10, 20, 30]
    assert [h["loss"] for h in history] == [2.0, 1.0, 0.5]
    assert "rel_l2" not in history[1] and history[2]["rel_l2"] == 0.25
    assert all("phase" not in h and "step" not in h for h in history)
    assert history[2]["plots/curve/_type"] == "image-file"  # nested keys: joined by "/"
    assert history[2]["plots/curve/width"] == 20
    media = offline_wandb.glob("wandb/offline-run-*/files/" + history[2]["plots/curve/path"])
    assert len(list(media)) == 1
    run = _wandb_run(offline_wandb)
    assert (run.display_name, run.run_group, run.project) == ("arm-a", "cmp", "adapinn")
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert config["train"] == CONFIG["train"] and config["seed"] == 3
    assert "resumed" not in run.tags


def test_wandb_without_credentials_refuses_instead_of_prompting(offline_wandb, monkeypatch,
                                                                tmp_path):
    import wandb

    if not hasattr(wandb, "login"):
        pytest.skip("this wandb has no login()")
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    wandb.teardown()
    monkeypatch.setattr("builtins.input", lambda *a: pytest.fail("W&B prompted for a key"))
    with pytest.raises(ConfigError, match="W&B has no credentials.*WANDB_MODE=offline"):
        open_loggers(["wandb"], tmp_path / "run", CONFIG, name="x")
    assert not (tmp_path / "run").exists()  # refused before W&B started a run


# --- missing packages, config ---------------------------------------------------------------

@pytest.mark.parametrize("name, module", [("wandb", "wandb"), ("tensorboard", "tensorboardX")])
def test_missing_package_names_the_extra(monkeypatch, name, module):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ImportError
    with pytest.raises(ConfigError, match=rf'pip install -e "\.\[{name}\]"'):
        check_available([name])
    with pytest.raises(ConfigError, match=rf'pip install -e "\.\[{name}\]"'):
        open_loggers(["tensorboard", "wandb"], Path("unused"), {}, name="x")
    check_available([])  # no loggers: nothing is imported


def test_run_with_a_missing_logger_fails_at_start_leaving_no_trace(tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    out = tmp_path / "run"
    assert main(["run", "burgers", "--out", str(out), "--no-progress",
                 "--set", "train.loggers=[tensorboard]"]) == 2
    assert 'pip install -e ".[tensorboard]"' in capsys.readouterr().err
    assert not out.exists()


def test_config_loggers_default_empty_and_names_are_checked():
    assert build_config({}).train.loggers == []
    config = build_config({}, overrides=["train.loggers=[wandb, tensorboard]"])
    assert config.train.loggers == ["wandb", "tensorboard"]
    with pytest.raises(ConfigError, match="train.loggers"):
        build_config({}, overrides=["train.loggers=[mlflow]"])


def test_compare_groups_arms_only_when_logging(tmp_path):
    logged = plan("burgers", "uniform,rad", budget_steps=10, group="cmp-burgers",
                  overrides=["train.loggers=[]"])
    assert {c.train.logger_group for c in logged.configs.values()} == {None}
    pytest.importorskip("tensorboardX")
    logged = plan("burgers", "uniform,rad", seeds=2, budget_steps=10, group="cmp-burgers",
                  overrides=["train.loggers=[tensorboard]"])
    assert {c.train.logger_group for c in logged.configs.values()} == {"cmp-burgers"}
    mine = plan("burgers", "uniform", budget_steps=10, group="cmp-burgers",
                overrides=["train.loggers=[tensorboard]", "train.logger_group=mine"])
    assert [c.train.logger_group for c in mine.configs.values()] == ["mine"]


# --- the interface ----------------------------------------------------------------------------

class _Recorder:
    def __init__(self):
        self.rows, self.images, self.closed = [], [], None

    def log_row(self, values, step):
        self.rows.append((step, values))

    def log_images(self, paths, step):
        self.images.append((step, sorted(paths)))

    def close(self, failed=False):
        self.closed = failed


def test_logged_metrics_forwards_kept_and_new_rows(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)
    for row in ROWS[:2]:
        log.append(row)
    recorder = _Recorder()
    kept = MetricsLog(path, keep_until=(10, 0))  # a resume after step 10: row 20 is dropped
    wrapped = LoggedMetrics(kept, Loggers([recorder]))
    wrapped.append(ROWS[2])
    assert [s for s, _ in recorder.rows] == [10, 30]
    assert recorder.rows[1][1] == {"rel_l2": 0.25, "loss": 0.5, "loss_pde": 0.25, "lr": 0.0,
                                   "lbfgs_iteration": 10.0}
    assert [r["step"] for r in wrapped.rows] == [10, 30] and wrapped.best["step"] == 30
    assert wrapped.path == path
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [10, 30]


def test_loggers_close_marks_failures_and_no_loggers_is_a_no_op(tmp_path):
    recorder = _Recorder()
    with pytest.raises(RuntimeError), Loggers([recorder]):
        raise RuntimeError("boom")
    assert recorder.closed is True
    empty = Loggers()
    assert not empty
    empty.log_row(ROWS[0])
    empty.log_images({"x": tmp_path / "x.png"})
    empty.close()


# --- end to end -------------------------------------------------------------------------------

def _fit(out, *extra, steps):
    args = ["run", "burgers", "--out", str(out), "--no-progress", "--set",
            f"train.steps={steps}", "--set", "train.loggers=[tensorboard, wandb]"]
    for item in TINY:
        args += ["--set", item]
    return main(args + list(extra))


def test_run_logs_every_metrics_row_and_the_plots_then_resumes(offline_wandb, monkeypatch,
                                                               tmp_path):
    pytest.importorskip("tensorboardX")
    monkeypatch.delenv("WANDB_DIR")  # W&B's files go to the run folder
    out = tmp_path / "burgers-run"
    assert _fit(out, steps=20) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    acc = _events(out / loggers.TENSORBOARD_DIR)
    assert _scalars(acc, "loss") == [(r["step"], pytest.approx(r["loss"])) for r in rows]
    assert _scalars(acc, "rel_l2") == [(r["step"], pytest.approx(r["rel_l2"])) for r in rows]
    assert {"plots/error_maps", "plots/convergence"} <= set(acc.Tags()["images"])
    history = _wandb_history(out)
    assert [h["_step"] for h in history if "loss" in h] == [10, 20]
    assert np.allclose([h["loss_pde"] for h in history if "loss" in h],
                       [r["loss_pde"] for r in rows])
    assert any(h.get("plots/convergence/_type") == "image-file" for h in history)
    run = _wandb_run(out)
    assert run.display_name == "burgers-run" and run.run_group == ""
    assert {u.key: json.loads(u.value_json) for u in run.config.update}["train"]["steps"] == 20

    assert _fit(out, "--resume", steps=30) == 0  # the event files mirror metrics.jsonl again
    acc = _events(out / loggers.TENSORBOARD_DIR)
    assert [s for s, _ in _scalars(acc, "loss")] == [10, 20, 30]
    assert len(list((out / loggers.TENSORBOARD_DIR).glob("events.out.tfevents.*"))) == 1
    assert len(list(out.glob("wandb/offline-run-*"))) == 2
    assert _fit(out, "--overwrite", "--set", "train.loggers=[]", steps=10) == 0
    assert not (out / loggers.TENSORBOARD_DIR).exists() and not (out / "wandb").exists()
