"""The IR: the one Op enum, dtypes and PyTorch's promotion rules, the immutable
hash-consed Node and Graph, and the nodes' side data (the user's source sites).

The bottom layer above lazytorch.config: it imports nothing else of lazytorch."""
