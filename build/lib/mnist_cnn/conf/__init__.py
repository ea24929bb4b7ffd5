"""The Hydra configs, shipped inside the package so an installed wheel finds them (one folder per config group)."""
