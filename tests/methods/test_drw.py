"""DRW: unweighted before its epoch, effective-number weights from it on."""

from __future__ import annotations

import pytest

from imbtrain.methods.drw import DRWMethod, deferred_epoch
from tests.methods.helpers import cfg, fake_data


def test_drw_is_unweighted_before_drw_epoch_and_effective_number_after():
    data = fake_data([5000, 50])
    # drw_epoch -1 with 10 epochs: floor(0.8 * 10) = 8, so epochs 0..7 plain, 8, 9 weighted
    method = DRWMethod(cfg(drw_epoch=-1, epochs=10), data)
    assert method.drw_epoch == 8
    assert method.class_weights(0) is None and method.class_weights(7) is None
    assert method.class_weights(8).tolist() == pytest.approx([0.025033, 1.974967], abs=2e-5)
    assert DRWMethod(cfg(drw_epoch=3), data).class_weights(3) is not None
    assert deferred_epoch(-1, 200) == 160 and deferred_epoch(-1, 7) == 5
