"""The Tensor front end: the Tensor class and the torch.* operations on it (creation,
elementwise, reductions, views, indexing, joining, sorting, ...), each validating
eagerly and recording IR nodes. lazytorch/__init__.py publishes them under PyTorch's
names; nothing here is a PyTorch import path of its own."""
