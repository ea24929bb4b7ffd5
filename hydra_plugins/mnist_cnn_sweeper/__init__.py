"""mnist_cnn's grid sweeper, where Hydra looks for plugins (the code is mnist_cnn.sweeps.sweeper)."""
