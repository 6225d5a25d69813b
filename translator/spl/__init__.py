"""SPL front end: tokens, AST, parser, macro expansion, printer."""

from translator.spl.macros import Expansion, Macro, MacroExpander
from translator.spl.parser import parse
from translator.spl.printer import print_pipeline

__all__ = ["Expansion", "Macro", "MacroExpander", "parse", "print_pipeline"]
