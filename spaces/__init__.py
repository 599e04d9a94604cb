"""What can be pruned and how: channel groups, search spaces, pruning and rebuilding.

The only package that imports torch_pruning; what leaves it is plain data (group names, channel
counts, JSON) and ordinary ``nn.Module`` objects.
"""

from spaces._attention import HeadsAttention, convert_attention
from spaces._file import SpaceFile, read_space_file
from spaces._global import channel_scores
from spaces._groups import ChannelGroup, ExcludedGroup, discover_groups, unhandled_parts
from spaces._prune import IMPORTANCES, SEARCHED_IMPORTANCES, breaking_widths, layer_widths, prune, rebuild
from spaces._ranking import Ranking, global_fractions
from spaces._space import KINDS, Allocation, Dimension, GroupChoices, SearchSpace, kept_channels, stage_name
from spaces._spec import PrunedSpec

__all__ = [
    "IMPORTANCES",
    "KINDS",
    "Allocation",
    "ChannelGroup",
    "Dimension",
    "GroupChoices",
    "HeadsAttention",
    "ExcludedGroup",
    "SearchSpace",
    "PrunedSpec",
    "Ranking",
    "SEARCHED_IMPORTANCES",
    "SpaceFile",
    "breaking_widths",
    "channel_scores",
    "convert_attention",
    "discover_groups",
    "global_fractions",
    "kept_channels",
    "layer_widths",
    "prune",
    "read_space_file",
    "rebuild",
    "stage_name",
    "unhandled_parts",
]
