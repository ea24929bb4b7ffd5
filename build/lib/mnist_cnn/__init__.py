"""mnist_cnn: configuration-driven training of convolutional digit classifiers."""
