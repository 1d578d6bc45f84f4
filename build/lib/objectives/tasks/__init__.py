"""Tasks: the item type and task protocol, the embedded arith task, JSON task files and datasets sources."""
