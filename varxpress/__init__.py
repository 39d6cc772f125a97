"""varxpress: predict how genetic variants change a gene's mRNA level.

The data flow, one module per step::

    VCF -> variants -> (variant, TSS) pairs -> ref/alt windows -> one-hot -> model -> scores -> writers
"""

__version__ = "0.1.0"
