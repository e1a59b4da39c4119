"""Export-time folding of the ACT actor's attention that cannot vary with the inputs.

Two identities hold exactly at inference (no dropout):
- attention over a single key has softmax weight 1, so it is the value projection followed by the output
  projection (one linear map once multiplied together); the query and key projections drop out. A state-only
  ACTSACActor's memory is one token (the observation): its encoder self-attention and the decoder's
  cross-attention attend over that one token;
- the first decoder layer's self-attention block reads only the learned queries, so its output is a constant.

The first holds only for a one-token memory. The observation-history actor's memory is T tokens, and a camera
model's memory is [state token(s), image tokens]: their encoder and cross-attention are real attention over
several keys and stay as they are. The second holds for every ACT layout (cameras and history included): the
first decoder layer's input is the learned queries whatever the observation and images.

The folded module computes the same (mean, log_std) as the actor (export verifies it against the unfolded actor
at the fp32 tolerance) with a smaller, simpler graph: about 2x faster in ONNX Runtime on a CPU for the default
state-only actor. Training and the PyTorch backends keep the actor as it is.
"""

from __future__ import annotations

import torch
from torch import nn

from actsac.policy.actors import ACTSACActor, Actor, Images, SequenceACTSACActor


def single_key_attention(attention: nn.MultiheadAttention) -> nn.Linear:
    """Multi-head attention over one key as one linear map of that key: out_proj(v_proj(key)), whatever the
    queries, with the two projections multiplied together (in float64, then rounded once)."""
    d = attention.embed_dim
    w_v, b_v = attention.in_proj_weight[2 * d:].double(), attention.in_proj_bias[2 * d:].double()
    w_o, b_o = attention.out_proj.weight.double(), attention.out_proj.bias.double()
    linear = nn.Linear(d, d)
    with torch.no_grad():
        linear.weight.copy_(w_o @ w_v)
        linear.bias.copy_(w_o @ b_v + b_o)
    return linear


def feed_forward(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return layer.linear2(layer.activation(layer.linear1(x)))


def single_token_memory(actor: ACTSACActor) -> bool:
    """Whether the actor's memory is always exactly one token: one observation, no history, no cameras."""
    return not isinstance(actor, SequenceACTSACActor) and actor.images is None


class FoldedACT(nn.Module):
    """Same interface the exporter uses (``forward(obs, images=None)``, ``to_robot_units``, ``config``) over an
    ACT actor. ``single_token``: the encoder's and the cross-attention's single-key folding is applied (a
    state-only actor without history); otherwise only the first decoder layer's self-attention is folded."""

    def __init__(self, actor: ACTSACActor):
        super().__init__()
        self.actor = actor
        self.config = actor.config
        self.single_token = single_token_memory(actor)
        if self.single_token:
            self.encoder_attention = nn.ModuleList(
                single_key_attention(layer.self_attn) for layer in getattr(actor.encoder, "layers", []))
            self.cross_attention = nn.ModuleList(
                single_key_attention(layer.multihead_attn) for layer in actor.decoder.layers)
        first = actor.decoder.layers[0]
        with torch.no_grad():
            queries = actor.queries.unsqueeze(0)
            after = first.norm1(queries + first.self_attn(queries, queries, queries, need_weights=False)[0])
        self.register_buffer("queries_after_self_attention", after)  # (1, H, d)

    def memory(self, obs_normalised: torch.Tensor, images: Images = None) -> torch.Tensor:
        if not self.single_token:
            return self.actor.memory(obs_normalised, images)
        x = self.actor.state_tokens(obs_normalised)  # (B, 1, d)
        for layer, attention in zip(getattr(self.actor.encoder, "layers", []), self.encoder_attention):
            x = layer.norm1(x + attention(x))
            x = layer.norm2(x + feed_forward(layer, x))
        return x

    def features(self, obs_normalised: torch.Tensor, images: Images = None) -> torch.Tensor:
        memory = self.memory(obs_normalised, images)
        x = self.queries_after_self_attention.expand(memory.shape[0], -1, -1)
        for index, layer in enumerate(self.actor.decoder.layers):
            if index > 0:
                x = layer.norm1(x + layer.self_attn(x, x, x, need_weights=False)[0])
            if self.single_token:
                cross = self.cross_attention[index](memory)  # (B, 1, d), broadcast over the H queries
            else:
                cross = layer.multihead_attn(x, memory, memory, need_weights=False)[0]
            x = layer.norm2(x + cross)
            x = layer.norm3(x + feed_forward(layer, x))
        return x

    def forward(self, obs: torch.Tensor, images: Images = None) -> tuple[torch.Tensor, torch.Tensor]:
        return Actor.forward(self, obs, images)

    def __getattr__(self, name: str):
        """obs_norm, the heads and to_robot_units come from the actor."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.actor, name)


def foldable(actor: nn.Module) -> bool:
    """ACT actors built the project's way: post-norm layers (the folding follows their order of operations)."""
    if not isinstance(actor, ACTSACActor):
        return False
    layers = [*getattr(actor.encoder, "layers", []), *actor.decoder.layers]
    return all(not layer.norm_first for layer in layers)


def fold_for_inference(actor: nn.Module) -> nn.Module:
    """The folded module for an ACT actor in eval mode, the actor itself otherwise (MLP, other layouts)."""
    return FoldedACT(actor.eval()).eval() if foldable(actor) else actor
