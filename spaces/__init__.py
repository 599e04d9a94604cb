"""What can be pruned and how: channel groups, search spaces, pruning and rebuilding.

The only package that imports torch_pruning; what leaves it is plain data (group names, channel
counts, JSON) and ordinary ``nn.Module`` objects.
"""

from spaces._groups import ChannelGroup, ExcludedGroup, discover_groups
from spaces._prune import layer_widths, prune, rebuild
from spaces._space import Allocation, PerLayerSpace, kept_channels
from spaces._spec import PrunedSpec

__all__ = [
    "Allocation",
    "ChannelGroup",
    "ExcludedGroup",
    "PerLayerSpace",
    "PrunedSpec",
    "discover_groups",
    "kept_channels",
    "layer_widths",
    "prune",
    "rebuild",
]
