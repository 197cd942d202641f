"""Markdown tables: the one renderer of the reports' tables (paper tables, timings, run comparisons)."""

__all__ = ["table_row", "table_rule", "table"]


def table_row(cells):
    """One Markdown table line, ``| a | b |``."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table_rule(align):
    """The line under the header: ``align`` has one letter per column, ``l`` (``---``) or ``r`` (``---:``).

    Raises
    ------
    ValueError
        A letter other than ``l`` or ``r``.
    """
    bad = sorted(set(align) - {"l", "r"})
    if bad:
        raise ValueError("table alignment letters are l or r, got %s in %r" % (", ".join(bad), align))
    return "|" + "".join("---:|" if a == "r" else "---|" for a in align)


def table(head, rows, align=None):
    """The lines of a Markdown table: header, rule, one line per row.

    Parameters
    ----------
    head : sequence of str
    rows : iterable of sequence
        Cells (converted with ``str``).
    align : str, optional
        One letter per column, ``l`` or ``r`` (default all ``l``).

    Raises
    ------
    ValueError
        ``align`` of another length than ``head``, or a row of another length.
    """
    head = list(head)
    align = align or "l" * len(head)
    if len(align) != len(head):
        raise ValueError("%d alignment letters for %d columns" % (len(align), len(head)))
    lines = [table_row(head), table_rule(align)]
    for r in rows:
        r = list(r)
        if len(r) != len(head):
            raise ValueError("a table row of %d cells under %d columns: %r" % (len(r), len(head), r))
        lines.append(table_row(r))
    return lines
