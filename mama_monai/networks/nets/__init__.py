"""Networks: MAMA Net and the baselines it is compared against."""

from mama_monai.networks.nets.autoencoder import ConvAutoEncoder
from mama_monai.networks.nets.mamanet import MEMORY_MODES, MAMANet
from mama_monai.networks.nets.memae import MemAE
from mama_monai.networks.nets.ensemble import ReconstructionEnsemble

__all__ = ["ConvAutoEncoder", "MAMANet", "MEMORY_MODES", "MemAE", "ReconstructionEnsemble"]
