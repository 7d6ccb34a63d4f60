"""rewardherd: reward-model ensembles against reward hacking.

Importing the package is cheap: heavy libraries (transformers, datasets, ray,
fastapi, matplotlib) are imported only by the subpackages that need them.
"""

__version__ = "0.1.0"
