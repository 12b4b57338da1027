"""countclip: teach CLIP to count (Paiss et al., "Teaching CLIP to Count to Ten", ICCV 2023).

The library (models, losses, counts, tokenizer assets) is separate from the trainer
(`countclip.train`), the evaluators (`countclip.evaluation`), the exporter
(`countclip.export`), the data tools (`countclip.mining`) and the synthetic world
(`countclip.synth`).
"""

__version__ = "0.1.0"

from countclip import _native

_native.install()  # `import countclip.counts` then takes the compiled count core while it is current
