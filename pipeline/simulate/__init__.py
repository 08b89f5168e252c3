"""A discrete-event model-cache simulator: reader -> policy -> loop, as libCacheSim separates them."""
