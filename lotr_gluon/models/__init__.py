"""The LOTR family's model code (LOTR, CNN+FFN and their parts), composed from built parts; the builders and
the registry are :mod:`lotr_gluon.model_zoo`.

Imports only the shared blocks (:mod:`lotr_gluon.blocks`), never :mod:`heatmap_baseline`, which sits beside it
on the same blocks.
"""
from .cnn_ffn import CNNFFN, conv_neck
from .heads import landmark_head
from .lotr import LOTR, token_neck
from .transformer import MultiHeadAttention, Transformer

__all__ = ["LOTR", "CNNFFN", "Transformer", "MultiHeadAttention", "landmark_head", "token_neck", "conv_neck"]
