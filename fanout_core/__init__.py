"""fanout's shared package: the record contract, settings, AWS clients, errors, logging.

Import-light on purpose: nothing here imports pyarrow except :mod:`fanout_core.arrow`,
which only the writer uses.
"""
