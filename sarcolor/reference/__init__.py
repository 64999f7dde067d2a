"""Colour from an optical reference image of the same place: read onto the SAR grid with its clouds and gaps masked
(``image``, ``clouds``), the colours fitted per scene on its clear pixels (``fit``), and, with ``--fill``, its clear
pixels kept and the SAR's colours used only in its gaps (``fill``)."""
