"""Ray's, Tune's and MLflow's own output off unless --verbose (imbtrain.tune.quiet): the
switches set inside the block and put back after it. No Ray session is started."""

from __future__ import annotations

import logging
import os

import pytest

from imbtrain.tune import quiet

SWITCHES = ("RAY_AIR_NEW_OUTPUT", "MLFLOW_LOGGING_LEVEL", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS")


@pytest.fixture
def clean_env(monkeypatch):
    for key in SWITCHES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "DEBUG")  # a user's own setting, put back
    for name in quiet.QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_ray_init_options():
    assert quiet.init_options(0) == {"logging_level": logging.ERROR, "log_to_driver": False}
    assert quiet.init_options(1) == {"logging_level": logging.INFO, "log_to_driver": True}


def test_quiet_sets_the_switches_and_puts_them_back(clean_env):
    with quiet.quiet(0):
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0"
        assert os.environ["MLFLOW_LOGGING_LEVEL"] == "WARNING"
        assert os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] == "1"
        assert logging.getLogger("ray.tune").level == logging.ERROR
        assert logging.getLogger("ray.train").level == logging.ERROR
        assert logging.getLogger("mlflow").level == logging.WARNING
    assert "RAY_AIR_NEW_OUTPUT" not in os.environ
    assert "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS" not in os.environ
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "DEBUG"
    assert all(logging.getLogger(n).level == logging.NOTSET for n in quiet.QUIET_LOGGERS)


def test_a_resumed_study_keeps_tunes_own_loggers(clean_env):
    with quiet.quiet(0, new_study=False):
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0"
        assert "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS" not in os.environ


def test_verbose_changes_nothing(clean_env):
    with quiet.quiet(1):
        assert "RAY_AIR_NEW_OUTPUT" not in os.environ
        assert os.environ["MLFLOW_LOGGING_LEVEL"] == "DEBUG"
        assert logging.getLogger("ray.tune").level == logging.NOTSET


def test_the_switches_come_back_after_an_error(clean_env):
    with pytest.raises(RuntimeError), quiet.quiet(0):
        raise RuntimeError("a study failed")
    assert "RAY_AIR_NEW_OUTPUT" not in os.environ
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "DEBUG"
