"""aucseg: long-tail semantic segmentation with AUC losses and the T-Memory Bank.

Implements AUCSeg (Han et al., "AUCSeg: AUC-oriented Pixel-level Long-tail Semantic
Segmentation", NeurIPS 2024, arXiv:2409.20398) as a modern PyTorch package.
"""

__version__ = "0.2.0"

__all__ = ["__version__"]
