"""prepgen: static results sites from Mexican PREP data packages."""

__version__ = "0.1.0"
