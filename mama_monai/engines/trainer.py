"""Training on MONAI's engines: reconstruction of normal images with the memory term."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys as Keys

from mama_monai.engines.batches import batch_images, in_layout

__all__ = ["AnomalyTrainer"]


class AnomalyTrainer(SupervisedTrainer):
    """:class:`~monai.engines.SupervisedTrainer` whose target is the input itself.

    Only ``_iteration`` is overridden. ``network`` must be a
    :class:`~mama_monai.engines.detailed_forward.DetailedForward` (possibly inside
    ``DistributedDataParallel``), so one forward gives the reconstruction and the memory term;
    ``loss_function`` a :class:`~mama_monai.losses.ReconstructionLoss`. With ``amp=True`` on CUDA
    the forward runs under bf16 autocast (no gradient scaler needed).

    ``memory_format`` (e.g. ``torch.channels_last``, from
    :class:`~mama_monai.engines.acceleration.Acceleration`) is the layout inputs are handed over in.
    ``input_noise`` (e.g. :class:`~mama_monai.engines.input_noise.CoarseNoise`): the network is
    given ``input_noise(image)`` and the loss compares its output with the clean ``image``
    (denoising training); ``None`` (default): plain reconstruction. ``augment`` (e.g.
    :class:`~mama_monai.engines.augmentation.RandomAffineBatch`) transforms the batch first: the
    transformed image is both the input and the target.

    ``engine.state.output`` holds ``image``, ``pred`` (reconstruction, detached), ``loss`` (the
    weighted total, for MONAI's ``StatsHandler``), the unweighted terms (``mse``, ``wasserstein``,
    ``memory``) and ``memory_indices`` (slots read in this iteration).
    """

    def __init__(
        self,
        *args: Any,
        memory_format: Optional[torch.memory_format] = None,
        input_noise: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        augment: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.memory_format = memory_format
        self.input_noise = input_noise
        self.augment = augment

    def _iteration(self, engine: "AnomalyTrainer", batchdata: Dict[str, Any]) -> Dict[str, Any]:
        inputs = batch_images(engine, batchdata)
        if engine.augment is not None:
            inputs = engine.augment(inputs)
        inputs = in_layout(inputs, engine.memory_format)
        engine.state.output = {Keys.IMAGE: inputs}
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        use_amp = engine.amp and inputs.device.type == "cuda"
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            seen = inputs if engine.input_noise is None else engine.input_noise(inputs)
            reconstruction, memory_loss, indices = engine.network(seen)
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        terms = engine.loss_function.components(reconstruction, inputs, memory_loss)
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        terms["loss"].backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        engine.optimizer.step()
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        engine.state.output.update({k: v.detach() for k, v in terms.items()})
        engine.state.output[Keys.PRED] = reconstruction.detach()
        engine.state.output["memory_indices"] = indices.detach()
        return engine.state.output
