"""The imperative shell: applies the core's decisions to torch modules, optimizers, Lightning and files."""
