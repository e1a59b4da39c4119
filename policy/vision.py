"""Image encoders in plain PyTorch: camera uint8 RGB (B, H, W, 3) -> a feature map -> tokens or a pooled vector.

- ``ResNet18Backbone``: torchvision's ResNet-18 up to layer4 (stride 32, 512 channels) with frozen batch norm,
  as ACT and LeRobot's ACT use it. Its parameter and buffer names and shapes are torchvision's (``conv1``,
  ``bn1``, ``layer1.0.conv1`` ... ``layer4.1.bn2``, ``layerN.0.downsample.{0,1}``), so torchvision / LeRobot
  weights load one to one (``load_torchvision_weights``).
- ``SmallCNN``: four 3x3 stride-2 convolutions (stride 16: a 48x64 image gives 3x4 tokens), for tasks that
  train on a CPU in minutes (the transformer's cost grows with the token count, so fewer, richer cells).

``ImageTokens`` (ACT's memory: a 1x1 conv to ``dim_model`` and a 2D sinusoidal position per feature-map cell)
and ``PooledImages`` (the MLP actor and the critic: a learned spatial pooling, as LeRobot's SAC) share one
backbone over every camera, like LeRobot's ACT. The pixel scaling and per-channel normalisation are inside
the module, so an exported graph takes the camera's bytes as they come.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import CameraConfig, PolicyConfig

BN_EPS = 1e-5  # torchvision's FrozenBatchNorm2d default


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine terms, all buffers (torchvision's names: weight, bias,
    running_mean, running_var; a ``num_batches_tracked`` entry in loaded weights is ignored)."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("weight", torch.ones(channels))
        self.register_buffer("bias", torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + BN_EPS).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(c_in, c_out, stride), FrozenBatchNorm2d(c_out)
        self.conv2, self.bn2 = conv3x3(c_out, c_out), FrozenBatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), FrozenBatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


def _conv_out(n: int, kernel: int, stride: int, padding: int) -> int:
    return (n + 2 * padding - kernel) // stride + 1


class ResNet18Backbone(nn.Module):
    """ResNet-18 to its layer4 feature map: (B, 3, H, W) -> (B, 512, ceil(H/32), ceil(W/32)) for H, W >= 32."""

    out_channels = 512

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = FrozenBatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = (64, 64, 128, 256, 512)
        for index in range(1, 5):
            stride = 1 if index == 1 else 2
            blocks = [BasicBlock(widths[index - 1], widths[index], stride), BasicBlock(widths[index], widths[index], 1)]
            self.add_module(f"layer{index}", nn.Sequential(*blocks))

    @staticmethod
    def feature_size(height: int, width: int) -> tuple[int, int]:
        def side(n: int) -> int:
            n = _conv_out(_conv_out(n, 7, 2, 3), 3, 2, 1)  # conv1, maxpool
            for _ in range(3):  # layer2..4 downsample by 2 (3x3, padding 1)
                n = _conv_out(n, 3, 2, 1)
            return n
        return side(height), side(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class SmallCNN(nn.Module):
    """Four 3x3 stride-2 convolutions with ReLU: (B, 3, H, W) -> (B, 64, ~H/16, ~W/16)."""

    channels = (16, 32, 64, 64)
    out_channels = channels[-1]

    def __init__(self):
        super().__init__()
        layers, c_in = [], 3
        for c_out in self.channels:
            layers += [nn.Conv2d(c_in, c_out, 3, 2, 1), nn.ReLU()]
            c_in = c_out
        self.net = nn.Sequential(*layers)

    @classmethod
    def feature_size(cls, height: int, width: int) -> tuple[int, int]:
        for _ in cls.channels:
            height, width = _conv_out(height, 3, 2, 1), _conv_out(width, 3, 2, 1)
        return height, width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


BACKBONES = {"resnet18": ResNet18Backbone, "small_cnn": SmallCNN}


def load_torchvision_weights(backbone: ResNet18Backbone, state_dict: dict[str, torch.Tensor]) -> None:
    """Load a torchvision ``resnet18().state_dict()`` (or LeRobot's backbone weights, prefix removed): every
    backbone tensor must be there with its shape; the classifier (``fc.*``) is dropped."""
    weights = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
    backbone.load_state_dict(weights, strict=True)


class ImageNormalizer(nn.Module):
    """uint8 (B, H, W, 3) RGB -> float (B, 3, H, W): x / 255, then (x - mean) / std per channel, as one
    multiply-add (scale = 1 / (255 std), offset = -mean / std)."""

    def __init__(self, camera: CameraConfig):
        super().__init__()
        mean, std = torch.tensor(camera.mean), torch.tensor(camera.std)
        self.register_buffer("scale", 1.0 / (255.0 * std))
        self.register_buffer("offset", -mean / std)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return (image.float() * self.scale + self.offset).permute(0, 3, 1, 2)


def sinusoidal_position_2d(height: int, width: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """The DETR / ACT 2D sine embedding of an (height, width) grid: (height * width, dim), row-major cells.
    Half the channels encode the row, half the column; each is [sin, cos] pairs of the cell's normalised
    position (1..n scaled to (0, 2 pi]) at geometric frequencies."""
    half = dim // 2
    rows = torch.arange(1, height + 1, dtype=torch.float64) / (height + 1e-6) * 2 * math.pi
    cols = torch.arange(1, width + 1, dtype=torch.float64) / (width + 1e-6) * 2 * math.pi
    frequency = temperature ** (2 * (torch.arange(half) // 2) / half)

    def encode(position: torch.Tensor) -> torch.Tensor:  # (n,) -> (n, half): sin on even, cos on odd channels
        angle = position[:, None] / frequency
        return torch.stack([angle[:, 0::2].sin(), angle[:, 1::2].cos()], dim=-1).flatten(1)

    y, x = encode(rows), encode(cols)
    grid = torch.cat([y[:, None].expand(height, width, -1), x[None].expand(height, width, -1)], dim=-1)
    out = torch.zeros(height * width, dim, dtype=torch.float64)
    out[:, :2 * half] = grid.reshape(height * width, -1)
    return out.float()


class CameraInputs(nn.Module):
    """The per-camera parts around a shared backbone: each camera's normaliser and feature-map size."""

    def __init__(self, cameras: list[CameraConfig], backbone_name: str):
        super().__init__()
        self.names = [c.name for c in cameras]
        self.normalizers = nn.ModuleDict({c.name: ImageNormalizer(c) for c in cameras})
        self.backbone = BACKBONES[backbone_name]()
        self.feature_sizes = {c.name: BACKBONES[backbone_name].feature_size(c.height, c.width) for c in cameras}
        for camera, (h, w) in self.feature_sizes.items():
            if h < 1 or w < 1:
                raise ValueError(f"camera '{camera}': image too small for the {backbone_name} encoder")

    def feature_maps(self, images: dict[str, torch.Tensor]):
        """(name, (B, C, h, w)) per camera, in config order."""
        for name in self.names:
            yield name, self.backbone(self.normalizers[name](images[name]))


class ImageTokens(nn.Module):
    """ACT's image memory: every camera's feature map through a 1x1 conv to ``dim_model``, one token per
    cell plus its 2D sine position and a learned per-camera embedding: (B, sum of h * w, dim_model)."""

    def __init__(self, config: PolicyConfig):
        super().__init__()
        d = config.dim_model
        self.inputs = CameraInputs(config.cameras, config.image_encoder)
        self.proj = nn.Conv2d(self.inputs.backbone.out_channels, d, 1)
        self.camera_embed = nn.Parameter(torch.randn(len(config.cameras), d) * 0.02)
        for name, (h, w) in self.inputs.feature_sizes.items():
            self.register_buffer(f"position_{name}", sinusoidal_position_2d(h, w, d), persistent=False)

    @property
    def n_tokens(self) -> int:
        return sum(h * w for h, w in self.inputs.feature_sizes.values())

    def forward(self, images: dict[str, torch.Tensor]) -> torch.Tensor:
        tokens = []
        for index, (name, features) in enumerate(self.inputs.feature_maps(images)):
            x = self.proj(features).flatten(2).transpose(1, 2)  # (B, h * w, d)
            tokens.append(x + getattr(self, f"position_{name}") + self.camera_embed[index])
        return torch.cat(tokens, dim=1)


class SpatialPooling(nn.Module):
    """A learned weighting of the feature-map cells: (B, C, h, w) -> (B, C * K) -> Linear, LayerNorm, tanh.
    Unlike global average pooling it keeps where things are in the image (LeRobot's SAC pools this way)."""

    def __init__(self, channels: int, height: int, width: int, out_dim: int, n_kernels: int = 8):
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(channels, height * width, n_kernels) * (2.0 / (height * width)) ** 0.5)
        self.out = nn.Sequential(nn.Linear(channels * n_kernels, out_dim), nn.LayerNorm(out_dim), nn.Tanh())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = torch.einsum("bcn,cnk->bck", features.flatten(2), self.kernel)
        return self.out(pooled.flatten(1))


class PooledImages(nn.Module):
    """One embedding of ``embed_dim`` per camera, concatenated: (B, n_cameras * embed_dim)."""

    def __init__(self, cameras: list[CameraConfig], backbone_name: str, embed_dim: int):
        super().__init__()
        self.inputs = CameraInputs(cameras, backbone_name)
        channels = self.inputs.backbone.out_channels
        self.pools = nn.ModuleDict({name: SpatialPooling(channels, h, w, embed_dim)
                                    for name, (h, w) in self.inputs.feature_sizes.items()})
        self.out_dim = embed_dim * len(cameras)

    def forward(self, images: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([self.pools[name](features) for name, features in self.inputs.feature_maps(images)], dim=-1)
