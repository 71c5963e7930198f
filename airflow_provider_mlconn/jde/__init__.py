"""JD Edwards facts: Julian dates (``dates``), table specs (``tables``), typed row models (``models``),
query conditions (``query``) and the published write orchestrations (``orchestrations``)."""
