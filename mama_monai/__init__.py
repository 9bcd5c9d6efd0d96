"""mama-monai: MAMA Net (Multi-Scale Attention Memory Autoencoder) on MONAI.

Sub-packages, one concept each:

- ``mama_monai.networks``: the attention blocks, the hash memory, ``MAMANet`` and the baselines
  (plain autoencoder, MemAE). Networks import nothing from data, engines or I/O.
- ``mama_monai.losses``: reconstruction (MSE + exact 1-D Wasserstein) and memory losses.
- ``mama_monai.data``: readers, modality presets, slicing, manifests and the embedded demo data.
- ``mama_monai.engines``: MONAI/ignite training and anomaly-scoring workflows.
- ``mama_monai.cli``: the ``mama-monai`` command.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
