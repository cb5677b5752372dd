"""The language-model layer: the network, the bar clock, data, training, generation and the
sampler chain. Imports only toolkit.music."""

from toolkit.lm import heap

heap.configure()  # a kernel's memory follows what it holds (toolkit.lm.heap)
