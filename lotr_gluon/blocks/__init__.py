"""Shared model building blocks (the shared-blocks layer of docs/architecture.md): the CNN backbones
(:mod:`lotr_gluon.blocks.backbones`) and the initialisation helpers (:mod:`lotr_gluon.blocks.layers`) that both
model families, LOTR / CNN+FFN (:mod:`lotr_gluon.models`) and the Earp et al. heatmap baseline
(:mod:`heatmap_baseline`), build on. Imports only the data layer; the two families never import each other
(:mod:`lotr_gluon.model_zoo` composes them)."""
