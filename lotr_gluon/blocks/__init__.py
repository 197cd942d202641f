"""Shared model building blocks, layer 2 of the README's "Layers": the CNN backbones
(:mod:`lotr_gluon.blocks.backbones`) and the initialisation helpers (:mod:`lotr_gluon.blocks.layers`) that both
model families, LOTR / CNN+FFN (:mod:`lotr_gluon.models`) and the Earp et al. heatmap baseline
(:mod:`heatmap_baseline`), build on. Imports only layer 1 (:mod:`lotr_gluon.errors`); kept out of
:mod:`lotr_gluon.models`, whose ``__init__`` is the model registry (layer 4) and imports both families."""
