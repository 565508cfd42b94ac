"""The ``samroto`` command. One module per subcommand; each defines ``register(subparsers)``."""
