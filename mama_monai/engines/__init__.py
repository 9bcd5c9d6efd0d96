"""MONAI/ignite engines: training, anomaly scoring, anomaly maps and the model file."""

from mama_monai.engines.acceleration import Acceleration
from mama_monai.engines.anomaly_map import SCORE_REDUCTIONS, AnomalyMap, anomaly_map_args
from mama_monai.engines.checkpoint import CheckpointError, load_model, read_checkpoint, save_model
from mama_monai.engines.detailed_forward import DetailedForward, unwrap
from mama_monai.engines.evaluator import AnomalyEvaluator, score_items
from mama_monai.engines.slot_usage import SlotUsageHandler
from mama_monai.engines.trainer import AnomalyTrainer

__all__ = [
    "Acceleration",
    "AnomalyEvaluator",
    "AnomalyMap",
    "AnomalyTrainer",
    "CheckpointError",
    "DetailedForward",
    "SCORE_REDUCTIONS",
    "SlotUsageHandler",
    "anomaly_map_args",
    "load_model",
    "read_checkpoint",
    "save_model",
    "score_items",
    "unwrap",
]
