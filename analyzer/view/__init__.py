"""Stage 2, view: the skeleton -> a ModelView (nodes, producers, consumers, stored tensors,
inferred shapes) and the constants a visitor or a rule may read."""
