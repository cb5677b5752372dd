"""The language-model layer: the network, the bar clock, data, training, generation and the
sampler chain. Imports only toolkit.music."""
