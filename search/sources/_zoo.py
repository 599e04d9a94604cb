"""Built-in models in plain torch: CIFAR-style ResNet-20/32/56, MobileNetV2, VGG-16-BN and a
four-layer ConvNet.

They take ``num_classes`` and 3-channel images of any size (global pooling before the classifier),
so the same factories serve digits at 16 or 32 pixels and CIFAR-10 alike. Downsampling shortcuts
are 1x1 convolutions (ResNet "option B"): the zero-padding shortcut of the original CIFAR ResNet is
a functional op whose channels torch-pruning cannot couple to the residual branch.
"""

from __future__ import annotations

from torch import Tensor, nn


class _BasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int, shortcut: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module | None = nn.Sequential() if shortcut else None
        if shortcut and (stride != 1 or in_channels != channels):
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out if self.shortcut is None else out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet for 32x32 inputs (He et al. 2016, section 4.2): 3 stages of 16/32/64 channels.
    With ``shortcuts=False`` it is the paper's plain network of the same depth: no layer's output
    is tied to another's, so every convolution is pruned on its own."""

    def __init__(self, depth: int, num_classes: int = 10, shortcuts: bool = True) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        stages, in_channels = [], 16
        for channels, stride in ((16, 1), (32, 2), (64, 2)):
            layers = []
            for i in range(blocks):
                layers.append(_BasicBlock(in_channels, channels, stride if i == 0 else 1,
                                          shortcuts))
                in_channels = channels
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.pool(x).flatten(1))


class _InvertedResidual(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_channels * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                       nn.ReLU6(inplace=True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al. 2018) with the CIFAR stem: stride 1 in the first layers."""

    # (expansion, output channels, blocks, first stride)
    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32),
                                   nn.ReLU6(inplace=True)]
        in_channels = 32
        for expand, channels, blocks, stride in self.SETTINGS:
            for i in range(blocks):
                layers.append(_InvertedResidual(in_channels, channels, stride if i == 0 else 1, expand))
                in_channels = channels
        layers += [nn.Conv2d(in_channels, 1280, 1, bias=False), nn.BatchNorm2d(1280),
                   nn.ReLU6(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(1280, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


class VGG(nn.Module):
    """VGG-16 with batch norm for 32x32 inputs (one linear classifier, as in CIFAR pruning papers)."""

    CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for item in self.CONFIG:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            layers += [nn.Conv2d(in_channels, item, 3, 1, 1, bias=False), nn.BatchNorm2d(item),
                       nn.ReLU(inplace=True)]
            in_channels = item
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


class ConvNet4(nn.Module):
    """Four 3x3 convolutions (32, 64, 128, 256 channels) with batch norm, pooled after the second
    and third: few layers, so that at batch 1 on a CPU its latency follows its widths rather than
    a fixed cost per layer (a pruned ResNet-20 stays above 0.6x of its dense latency there)."""

    WIDTHS = (32, 64, 128, 256)

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for i, width in enumerate(self.WIDTHS):
            layers += [nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
            if i in (1, 2):
                layers.append(nn.MaxPool2d(2))
            in_channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


def convnet4(num_classes: int = 10) -> ConvNet4:
    return ConvNet4(num_classes)


def resnet20(num_classes: int = 10) -> CifarResNet:
    return CifarResNet(20, num_classes)


def resnet32(num_classes: int = 10) -> CifarResNet:
    return CifarResNet(32, num_classes)


def resnet56(num_classes: int = 10) -> CifarResNet:
    return CifarResNet(56, num_classes)


def plain20(num_classes: int = 10) -> CifarResNet:
    return CifarResNet(20, num_classes, shortcuts=False)


def mobilenetv2(num_classes: int = 10) -> MobileNetV2:
    return MobileNetV2(num_classes)


def vgg16_bn(num_classes: int = 10) -> VGG:
    return VGG(num_classes)


ZOO = {
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet56": resnet56,
    "plain20": plain20,
    "mobilenetv2": mobilenetv2,
    "vgg16_bn": vgg16_bn,
    "convnet4": convnet4,
}
