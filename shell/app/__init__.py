"""Applications on top of the library: the demo and the command line. The library never imports this package."""
