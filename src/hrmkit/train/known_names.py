"""Every name the config accepts for an optimizer, an lr scheduler or a token loss, in one listing.

It stands alone because it is the one place that reads all three builders' tables.
"""

from __future__ import annotations

from pytorch_optimizer import get_supported_optimizers
from pytorch_optimizer.loss import LOSS_FUNCTIONS

from hrmkit.train.lr_schedule import OUR_SCHEDULES, pytorch_lr_scheduler_names
from hrmkit.train.optimizers import ADAM_ATAN2_NAMES, optimizer_class_for, unmet_need
from hrmkit.train.token_losses import CROSS_ENTROPY, MODEL_HEAD_LOSSES


def list_names() -> dict[str, list[str]]:
    """Every name accepted for optimizers, lr schedulers and losses (``hrm info --names``)."""
    return {
        # Not those that hrmkit's trainer can never train with (muon, lomo, alig, ...).
        "optimizers": sorted(name for name in {*get_supported_optimizers(), ADAM_ATAN2_NAMES[0]}
                             if unmet_need(name, optimizer_class_for(name)) is None),
        "lr_schedulers": sorted({*pytorch_lr_scheduler_names(), *OUR_SCHEDULES}),
        "losses": [*MODEL_HEAD_LOSSES, CROSS_ENTROPY, *sorted(LOSS_FUNCTIONS)],
    }
