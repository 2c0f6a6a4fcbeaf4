"""ferlib: a reproducible, notebook-first study package for attention-based facial
expression recognition.

Five published networks share one data pipeline and one training harness:
AMP-Net, MA-Net, LAN, FFRA-Net and the Multiple Attention Network (RASnet + ERSnet).
Real datasets are never shipped; SynthFER (``ferlib.data.synthfer``) is a procedural,
*synthetic* expression dataset with exact landmarks so everything runs offline.
"""

__version__ = "0.1.0"
