"""Type stub of the lazy package root: the names ``ebm_ppl/__init__.py`` imports on first
use, as eager imports (for type checkers and IDEs)."""


__version__: str
