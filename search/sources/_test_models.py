"""Small models, one per architectural pattern that makes pruning hard, in plain torch.

Each is a few layers of the pattern real models are built from: DenseNet's concatenations,
ResNeXt's grouped convolutions with squeeze-excitation, ConvNeXt's depthwise convolution with
LayerNorm and a layer-scale parameter, a ViT with a class token and multi-head attention (torch's
``nn.MultiheadAttention``, and timm's form whose heads are pruned),
ShuffleNet-style split/concat branches, MobileNetV3's hard-swish inverted residuals, and a
channel shuffle that torch-pruning cannot follow. They are
built-in models (``--model pattern-concat`` ...) so ``inspect`` and the tests can show what the
search does with each; all take any image size of 16 px or more.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Head(nn.Module):
    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x.mean((2, 3)))


class ConcatNet(nn.Module):
    """A dense block: every layer sees the concatenation of all earlier outputs."""

    def __init__(self, num_classes: int = 10, growth: int = 16) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 32)
        self.layers = nn.ModuleList(_conv_bn(32 + i * growth, growth) for i in range(3))
        self.transition = _conv_bn(32 + 3 * growth, 64, k=1)
        self.head = _Head(64, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        features = [self.stem(x)]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return self.head(self.transition(torch.cat(features, 1)))


class _SE(nn.Module):
    def __init__(self, channels: int, reduced: int, gate: type[nn.Module] = nn.Sigmoid) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)
        self.gate = gate()

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(self.expand(F.relu(self.reduce(x.mean((2, 3), keepdim=True)))))


class GroupedSENet(nn.Module):
    """ResNeXt blocks (grouped 3x3 convolution, 4 groups) with squeeze-excitation."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 32)
        self.blocks = nn.ModuleList(nn.Sequential(
            _conv_bn(32, 64, k=1), _conv_bn(64, 64, groups=4), nn.Conv2d(64, 32, 1, bias=False),
            nn.BatchNorm2d(32), _SE(32, 8)) for _ in range(2))
        self.head = _Head(32, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = F.relu(x + block(x))
        return self.head(x)


class _ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-1))  # layer scale

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm(self.dwconv(x).permute(0, 2, 3, 1))
        y = self.gamma * self.pwconv2(F.gelu(self.pwconv1(y)))
        return x + y.permute(0, 3, 1, 2)


class DepthwiseLNNet(nn.Module):
    """ConvNeXt blocks: depthwise 7x7, LayerNorm on channels-last, MLP, layer scale."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 4, 4)
        self.blocks = nn.Sequential(_ConvNeXtBlock(32), _ConvNeXtBlock(32))
        self.head = _Head(32, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))


class _AttentionBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.fc1 = nn.Linear(dim, 2 * dim)
        self.fc2 = nn.Linear(2 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class AttentionNet(nn.Module):
    """A small ViT: 4x4 patches, a class token, two pre-norm blocks of 4-head attention + MLP."""

    def __init__(self, num_classes: int = 10, dim: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 4, 4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.Sequential(_AttentionBlock(dim, heads), _AttentionBlock(dim, heads))
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(len(x), -1, -1), tokens], 1)
        return self.fc(self.norm(self.blocks(tokens))[:, 0])


class _Attention(nn.Module):
    """Attention in the timm form: a fused q/k/v projection read back through ``num_heads`` and
    ``attn_dim`` (timm 1.0's names)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.num_heads, self.head_dim, self.attn_dim = heads, dim // heads, dim
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
        return self.proj(x.reshape(b, n, self.attn_dim))


class _HeadsBlock(_AttentionBlock):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__(dim, heads)
        self.attn = _Attention(dim, heads)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class HeadsNet(AttentionNet):
    """The small ViT with timm-style attention, whose heads are a prunable dimension."""

    def __init__(self, num_classes: int = 10, dim: int = 64, heads: int = 4) -> None:
        super().__init__(num_classes, dim, heads)
        self.blocks = nn.Sequential(_HeadsBlock(dim, heads), _HeadsBlock(dim, heads))


class SplitCatNet(nn.Module):
    """ShuffleNetV2-style units: split the channels in two, transform one half, concatenate."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 64)
        self.branches = nn.ModuleList(nn.Sequential(
            _conv_bn(32, 32, k=1), nn.Conv2d(32, 32, 3, 1, 1, groups=32, bias=False),
            nn.BatchNorm2d(32), _conv_bn(32, 32, k=1)) for _ in range(2))
        self.head = _Head(64, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for branch in self.branches:
            kept, changed = x.chunk(2, dim=1)
            x = torch.cat([kept, branch(changed)], 1)
        return self.head(x)


class ChannelShuffleNet(nn.Module):
    """A channel shuffle written for its dense width (16 channels per group), which pruning the
    layer before it breaks: the probe finds that and keeps that group dense."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 32)
        self.expand = _conv_bn(32, 64, k=1)
        self.mix = _conv_bn(64, 64)
        self.head = _Head(64, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.expand(self.stem(x))
        n, c, h, w = x.shape
        x = x.view(n, 4, 16, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.head(self.mix(x))


class HardSwishNet(nn.Module):
    """MobileNetV3 inverted residuals: 1x1 expand, depthwise, SE with hard-sigmoid, hard-swish."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.Hardswish())
        self.blocks = nn.ModuleList(nn.Sequential(
            nn.Conv2d(16, 64, 1, bias=False), nn.BatchNorm2d(64), nn.Hardswish(),
            nn.Conv2d(64, 64, 3, 1, 1, groups=64, bias=False), nn.BatchNorm2d(64), nn.Hardswish(),
            _SE(64, 16, nn.Hardsigmoid), nn.Conv2d(64, 16, 1, bias=False), nn.BatchNorm2d(16))
            for _ in range(2))
        self.head = nn.Sequential(nn.Conv2d(16, 96, 1), nn.Hardswish())
        self.fc = nn.Linear(96, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = x + block(x)
        return self.fc(self.head(x).mean((2, 3)))


TEST_MODELS = {
    "pattern-concat": ConcatNet,
    "pattern-grouped-se": GroupedSENet,
    "pattern-depthwise-ln": DepthwiseLNNet,
    "pattern-attention": AttentionNet,
    "pattern-heads": HeadsNet,
    "pattern-split-cat": SplitCatNet,
    "pattern-hardswish": HardSwishNet,
    "pattern-channel-shuffle": ChannelShuffleNet,
}
