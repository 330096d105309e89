"""Training engine: the train loop and its hooks, optimizer and schedule, checkpoints,
logging, evaluation and inference, the builders and the task bodies.

``build`` maps a :class:`aucseg.config.Config` onto the plain-valued pieces; ``tasks`` holds
the bodies of ``train``/``test``/``predict``; every other module takes plain values only.
"""

from aucseg.engine.checkpoint import (
    checkpoint_dir,
    get_rng_state,
    load_checkpoint_file,
    make_checkpoint,
    resolve_resume_path,
    save_atomic,
    set_rng_state,
)
from aucseg.engine.logger import TrainLogger
from aucseg.engine.optim import build_adamw, build_param_groups, official_custom_keys
from aucseg.engine.schedule import PolyWarmupScheduler, poly_warmup_lr
from aucseg.engine.trainer import StepOptions, Trainer

__all__ = [
    "PolyWarmupScheduler",
    "StepOptions",
    "TrainLogger",
    "Trainer",
    "build_adamw",
    "build_param_groups",
    "checkpoint_dir",
    "get_rng_state",
    "load_checkpoint_file",
    "make_checkpoint",
    "official_custom_keys",
    "poly_warmup_lr",
    "resolve_resume_path",
    "save_atomic",
    "set_rng_state",
]
