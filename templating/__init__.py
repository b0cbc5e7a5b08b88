"""One templating mechanism for every prompt file of the project (generator templates, rubrics).

A slot is ``${name}`` (or ``$name``) and a literal dollar is ``$$``: the syntax and semantics of
the standard library's :class:`string.Template`. Filling is a single left-to-right pass over the
template text; a value is copied into the output and never read again, so a value that holds
``${output}``, ``{input}``, ``$name``, ``\\1`` or a backslash reaches the prompt verbatim.

It lives in its own package because both libraries render prompts and neither should depend on
the other: ``filters`` is usable without the generation stack, and ``generators`` runs an
iteration without filters. Each library wraps :class:`SlotError` in its own exception tree.

Its exception tree is one class with a stable ``code`` (the service maps it to HTTP 422)::

    SlotError (+ValueError)  slot_error  ``missing`` / ``unexpected`` slot names
"""

from templating.slots import SlotError, fill_slots, slot_names

__all__ = ["SlotError", "fill_slots", "slot_names"]
