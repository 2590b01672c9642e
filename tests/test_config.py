"""TrainConfig: validation messages, YAML round-trip, overrides with type coercion."""

import pytest

from imbtrain.config import (
    ConfigError,
    TrainConfig,
    check_value,
    describe,
    load_config,
    parse_overrides,
)


def test_defaults_are_valid_and_documented():
    cfg = TrainConfig()
    assert cfg.dataset == "mnist5k" and cfg.train_ratio == 1.0
    for key in cfg.to_dict():
        assert describe(key), f"{key} has no docstring"


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="unknown config key 'batchsize'"):
        parse_overrides(["batchsize=3"])
    with pytest.raises(ConfigError, match="unknown config key 'lrr'"):
        TrainConfig.from_dict({"lrr": 0.1})


@pytest.mark.parametrize("key,value,allowed", [
    ("train_ratio", 0, r"\(0.0, 1.0\]"),
    ("train_ratio", 1.5, r"\(0.0, 1.0\]"),
    ("epochs", 0, r"\[1, 100000\]"),
    ("sam", "asam", "none, sam, sam_a"),
    ("augment", "cutout", "none, flip_crop"),
])
def test_out_of_range_value_names_key_value_and_allowed(key, value, allowed):
    with pytest.raises(ConfigError, match=rf"{key}={value!r}.*{allowed}"):
        TrainConfig(**{key: value})


def test_type_coercion_of_overrides():
    over = parse_overrides(["batch_size=16", "lr=0.1", "nesterov=true", "sam=sam_a",
                            "train_ratio=1e-2", "dataset=cifar10",
                            "data_dir=/tmp/x"])
    cfg = TrainConfig(**over)
    assert cfg.batch_size == 16 and isinstance(cfg.batch_size, int)
    assert cfg.lr == 0.1 and cfg.nesterov is True and cfg.train_ratio == 0.01
    assert check_value("epochs", "7") == 7
    with pytest.raises(ConfigError, match="batch_size='many' is not a valid int"):
        TrainConfig(**parse_overrides(["batch_size=many"]))
    with pytest.raises(ConfigError, match="epochs=2.5 is not a valid int"):
        TrainConfig(epochs=2.5)


def test_yaml_round_trip(tmp_path):
    cfg = TrainConfig(train_ratio=0.01, batch_size=16, sam="sam_a", smoothing="class",
                      model="resnet20", warmup_epochs=0.5)
    cfg.save(tmp_path / "c.yaml")
    again = load_config(tmp_path / "c.yaml")
    assert again == cfg
    again.save(tmp_path / "d.yaml")
    assert (tmp_path / "c.yaml").read_text() == (tmp_path / "d.yaml").read_text()


def test_bad_yaml_and_unknown_key_in_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [0.1\nepochs: 3\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(bad)
    unknown = tmp_path / "u.yaml"
    unknown.write_text("epochz: 3\n")
    with pytest.raises(ConfigError, match=r"u.yaml: unknown config key 'epochz'"):
        load_config(unknown)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_combinations_checked_once_at_the_edge():
    with pytest.raises(ConfigError, match="dataset=cifar10 needs data_dir"):
        TrainConfig(dataset="cifar10")
    with pytest.raises(ConfigError, match="drw_epoch=5 must be below epochs=5"):
        TrainConfig(drw_epoch=5, epochs=5)
    with pytest.raises(ConfigError, match="synthetic_shape='3x4'"):
        TrainConfig(dataset="synthetic", synthetic_shape="3x4")


def test_trial_name_carries_key_settings():
    cfg = TrainConfig(train_ratio=0.01, batch_size=16, sam="sam_a", seed=2)
    assert cfg.trial_name() == "mnist5k_r0.01_bs16_sam_a_s2"
