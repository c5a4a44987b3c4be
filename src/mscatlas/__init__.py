"""mscatlas: mesenchymal stem cell therapy in cancer, made computable."""

__version__ = "0.1.0"
__all__ = ["__version__"]
