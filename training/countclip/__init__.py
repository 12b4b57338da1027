"""countclip: teach CLIP to count (Paiss et al., "Teaching CLIP to Count to Ten", ICCV 2023).

The library (`countclip.counting`: the count language; `countclip.model`: CLIP behind one
interface; `countclip.losses`, `countclip.data`, `countclip.bundle`: what ships) is separate
from the tools built on it: the evaluators (`countclip.evaluation`), the trainer
(`countclip.train`), the synthetic world (`countclip.synth`) and the data tools
(`countclip.mining`). tests/test_layers.py holds the layers: what may import what.
"""

__version__ = "0.1.0"
