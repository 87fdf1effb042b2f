"""The paper's Max-of-K configurations, by name (`--preset paper-k10`).

Read from the paper's code (JasonGross/guarantees-based-mechanistic-interpretability):
gbmi/exp_max_of_n/train.py defines MAX_OF_4_CONFIG (d_vocab 64, d_model 32, one head so
d_head 32, attention only, no normalisation or biases; AdamW lr 1e-3, betas (0.9, 0.999),
no weight decay given so torch's default 0.01; batch 128; 3000 steps; uniform random
sequences) and MAX_OF_{5,10,20}_CONFIG as the same with seq_len K, the latter two with a
d_vocab_out argument. Its data-generation workflow (.github/workflows/generate-data.yaml)
runs the 151 seeds at (K, d_vocab) = (4, 64), (5, 64), (10, 64), (10, 128), (20, 64),
(20, 512). Our defaults are that configuration for every K (d_vocab 64), so `--k K`
alone is the paper's model for K; the larger vocabularies are presets.
"""

from __future__ import annotations

from .config import Config

PAPER_PRESETS: dict[str, Config] = {
    "paper-k4": Config(64, 4, 32, 32),
    "paper-k5": Config(64, 5, 32, 32),
    "paper-k10": Config(64, 10, 32, 32),
    "paper-k10-v128": Config(128, 10, 32, 32),
    "paper-k20": Config(64, 20, 32, 32),
    "paper-k20-v512": Config(512, 20, 32, 32),
}

# the paper's training run (certify.modelio.train.TrainParams must equal it; a test checks)
PAPER_TRAINING = {"steps": 3000, "batch_size": 128, "lr": 1e-3, "beta1": 0.9, "beta2": 0.999,
                  "weight_decay": 0.01}


def preset_config(name: str) -> Config:
    """A named configuration; an unknown name is an error that lists the known ones."""
    try:
        return PAPER_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PAPER_PRESETS)}") from None
