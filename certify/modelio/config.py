"""The model's configuration and the error type for bad models: torch-free, so that
commands that need no torch (`certify check`) can import them."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .digest import WEIGHT_NAMES

__all__ = ["WEIGHT_NAMES", "Config", "ModelError"]


class ModelError(ValueError):
    """Bad model input: a wrong shape, a non-finite weight, an unsupported checkpoint."""


@dataclass(frozen=True)
class Config:
    d_vocab: int = 64
    n_ctx: int = 4  # K, the number of tokens whose max is predicted
    d_model: int = 32
    d_head: int = 32

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ModelError(f"config field {name} must be a positive integer, got {value!r}")
        if self.d_vocab < 2:
            raise ModelError("config field d_vocab must be at least 2")
        if self.n_ctx < 2:
            raise ModelError("config field n_ctx (K) must be at least 2: Max-of-1 has nothing to attend to")

    def shapes(self) -> dict[str, tuple[int, int]]:
        return {
            "W_E": (self.d_vocab, self.d_model),
            "W_pos": (self.n_ctx, self.d_model),
            "W_Q": (self.d_model, self.d_head),
            "W_K": (self.d_model, self.d_head),
            "W_V": (self.d_model, self.d_head),
            "W_O": (self.d_head, self.d_model),
            "W_U": (self.d_model, self.d_vocab),
        }

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict) -> "Config":
        try:
            return Config(**{k: data[k] for k in ("d_vocab", "n_ctx", "d_model", "d_head")})
        except KeyError as missing:
            raise ModelError(f"config is missing field {missing}") from None
