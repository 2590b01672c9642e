"""imbtrain: neural-network training under class imbalance, and Ray Tune studies of it.

Implements "Simplifying Neural Network Training Under Class Imbalance" (NeurIPS 2023):
the tuned training routine, its imbalance-aware knobs (SAM-A, class-conditional label
smoothing, Joint-SSL) and the specialised baselines it compares with.
"""

__version__ = "0.1.0"
