"""Training-time augmentation: the T-Memory Bank (per-sample and batch placements)."""

from aucseg.augment.memory_bank import BatchTMemoryBank, MemoryBankTransform, TMemoryBank

__all__ = ["BatchTMemoryBank", "MemoryBankTransform", "TMemoryBank"]
