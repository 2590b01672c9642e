"""Start-up: `import imbtrain`, and a training run that does not need them, import none of
torchvision, timm, MLflow, matplotlib or Ray (each takes a second or more to import, paid by
every Ray worker's first trial). Checked in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

HEAVY = ("torchvision", "timm", "mlflow", "matplotlib", "ray")


def loaded_after(code: str, tmp_path) -> list[str]:
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))))
    """)
    env = {**os.environ, "IMBTRAIN_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_imbtrain_is_light(tmp_path):
    assert loaded_after("import imbtrain", tmp_path) == []


def test_a_cnn_trained_on_digits_imports_none_of_them(tmp_path):
    code = """
        import imbtrain.train
        from imbtrain import TrainConfig, train
        cfg = TrainConfig(dataset="digits", model="cnn", epochs=1, train_ratio=0.1,
                          batch_size=128, device="cpu")
        result = train(cfg, log=lambda line: None)
        assert result.metrics["epoch"] == 1 and "cdnv" in result.metrics
    """
    assert loaded_after(code, tmp_path) == []
    assert loaded_after(code, tmp_path) == []  # the second time from the disk cache


def test_the_trainable_module_imports_neither_ray_nor_mlflow_nor_the_tables(tmp_path):
    code = """
        import imbtrain.tune.trainable
        assert "pandas" not in sys.modules and "pyarrow" not in sys.modules, "tables"
    """
    assert loaded_after("import sys\n" + textwrap.dedent(code), tmp_path) == []
