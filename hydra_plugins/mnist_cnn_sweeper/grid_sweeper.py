"""Registers mnist_cnn.sweeps.sweeper.GridSweeper with Hydra, which instantiates sweepers only from hydra_plugins."""

from mnist_cnn.sweeps import sweeper


class GridSweeper(sweeper.GridSweeper):
    """conf/hydra/sweeper/grid.yaml names this class; its code is mnist_cnn.sweeps.sweeper.GridSweeper."""
