"""Training helpers: local datasets (more to come: strategies, recipes)."""
