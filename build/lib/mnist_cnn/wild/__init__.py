"""Digits in the wild: reading images people bring, MNIST-style preprocessing, the pixel classifier."""
